// Chromium for the browser tests (the console, the dashboard example): where it is, a headless launch, tests that say
// why they skipped on a machine without it, and full-page screenshots into the tests' artifacts.
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { it } from 'vitest';

export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const haveChromium = existsSync(chromiumPath);
export const skipReason = `no Chromium at ${chromiumPath}: install Debian's chromium package or set CHROMIUM_PATH`;

/** Headless Chromium with the switches every browser test uses, and `args`. */
export function launchChromium(args: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-component-update', '--disable-sync', ...args],
  });
}

/** `it(title, test, timeoutMs)`, or where this machine has no Chromium a skipped test that says why. */
export function itInChromium(title: string, test: () => Promise<void>, timeoutMs?: number): void {
  if (haveChromium) it(title, test, timeoutMs);
  else it.skip(`${title} (skipped: ${skipReason})`, () => {});
}

/** A screenshot of the whole page at `file`, its directory made when missing. */
export async function screenshot(page: Page, file: string): Promise<void> {
  mkdirSync(path.dirname(file), { recursive: true });
  await page.screenshot({ path: file, fullPage: true });
}
