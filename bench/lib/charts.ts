// SVG charts for bench/charts/, drawn with vega-lite in Node (no browser, no canvas).
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { isRecording } from './results.js';

const dir = fileURLToPath(new URL('../charts/', import.meta.url));

/** Renders a vega-lite spec to `bench/charts/<name>.svg`; returns the path relative to bench/. */
export async function writeChart(name: string, spec: TopLevelSpec): Promise<string> {
  if (!isRecording()) return `charts/${name}.svg`;
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    await mkdir(dir, { recursive: true });
    await writeFile(`${dir}${name}.svg`, svg);
    return `charts/${name}.svg`;
  } finally {
    view.finalize();
  }
}

/** The three targets in one colour scheme across every chart. */
export const targetColors = {
  field: 'target',
  type: 'nominal',
  title: null,
  scale: { domain: ['pgrelay', 'pgrelay, ticker polling', 'A (Socket.IO)', 'B (ws)'], range: ['#d62728', '#ff9896', '#1f77b4', '#2ca02c'] },
} as const;
