import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { waitFor } from './processes.js';

export const CHROMIUM = process.env.HERALD_CHROMIUM ?? '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install chromium; .ci/run does)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Records every text the connection-state element shows, from the first paint on, in window.__states. */
const RECORD_STATES = `
  window.__states = [];
  const record = () => {
    const el = document.querySelector('[data-testid="connection-state"]');
    if (!el) return;
    const t = el.textContent;
    if (window.__states[window.__states.length - 1] !== t) window.__states.push(t);
  };
  new MutationObserver(record).observe(document, { subtree: true, childList: true, characterData: true });
`;

export interface UserPage {
  name: string;
  context: BrowserContext;
  page: Page;
  console: string[];
  states(): Promise<string[]>;
  messages(): Promise<string[]>;
  presence(): Promise<string[]>;
  state(): Promise<string>;
}

export async function openPage(browser: Browser, name: string): Promise<UserPage> {
  const context = await browser.newContext();
  await context.addInitScript(RECORD_STATES);
  const page = await context.newPage();
  const consoleLines: string[] = [];
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  return {
    name,
    context,
    page,
    console: consoleLines,
    states: () => page.evaluate(() => (window as unknown as { __states: string[] }).__states.slice()),
    // "user: text" for each message on the page, in the order shown: the example app marks the sender (data-user)
    // and the text (message-text); docs/nextjs.md's page (tests/newapp) shows "user: text" as the element's text.
    messages: () =>
      page
        .locator('[data-testid="message"]')
        .evaluateAll((els) =>
          els.map((el) =>
            el.hasAttribute('data-user')
              ? `${el.getAttribute('data-user')}: ${el.querySelector('[data-testid="message-text"]')?.textContent ?? ''}`
              : (el.textContent ?? ''),
          ),
        ),
    // The users shown online (Herald's presence): data-user in the example app, the element's text in the docs' page.
    presence: () =>
      page
        .locator('[data-testid="presence-member"]')
        .evaluateAll((els) => els.map((el) => el.getAttribute('data-user') ?? el.textContent ?? '')),
    state: async () => (await page.locator('[data-testid="connection-state"]').textContent()) ?? '',
  };
}

export async function logIn(u: UserPage, base: string): Promise<void> {
  await u.page.goto(`${base}/login`);
  await u.page.getByTestId('login-user').fill(u.name);
  await u.page.getByTestId('login-password').fill('demo');
  await u.page.getByTestId('login-submit').click();
  await u.page.waitForURL(`${base}/`, { timeout: 20_000 });
}

export async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs = 15_000,
): Promise<T> {
  return waitFor(what, check, timeoutMs);
}

export async function send(u: UserPage, text: string): Promise<void> {
  await u.page.getByTestId('message-input').fill(text);
  await u.page.getByTestId('message-send').click();
}
