// Mounts React components that render nothing, with react-dom's real client renderer and only a stub container (this repo's tests have no DOM).
import { act, type ReactElement } from 'react';
import { createRoot } from 'react-dom/client';

const g = globalThis as any;
const noop = () => {};

/** Runs `f` inside React's act(), switching the act environment on only for that while (socket-driven updates happen outside it). */
async function inAct(f: () => void): Promise<void> {
  g.IS_REACT_ACT_ENVIRONMENT = true;
  try {
    await act(async () => f());
  } finally {
    g.IS_REACT_ACT_ENVIRONMENT = false;
  }
}

export interface Mounted {
  rerender(element: ReactElement): Promise<void>;
  unmount(): Promise<void>;
}

/** `element` must render null: the container is a stub that can hold no nodes. */
export async function mount(element: ReactElement): Promise<Mounted> {
  // What react-dom's client reads even when nothing is rendered: the window, an iframe class for focus tracking, the container's document.
  g.window ??= globalThis;
  g.HTMLIFrameElement ??= class {};
  const doc = { nodeType: 9, activeElement: null, defaultView: globalThis, addEventListener: noop, removeEventListener: noop };
  const container = { nodeType: 1, nodeName: 'DIV', tagName: 'DIV', namespaceURI: 'http://www.w3.org/1999/xhtml', ownerDocument: doc, addEventListener: noop, removeEventListener: noop };
  const root = createRoot(container as unknown as Element);
  await inAct(() => root.render(element));
  return {
    rerender: (next) => inAct(() => root.render(next)),
    unmount: () => inAct(() => root.unmount()),
  };
}
