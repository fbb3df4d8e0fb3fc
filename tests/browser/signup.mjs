// Drives Debian's chromium (headless) through the real pages: sign up, confirm the address with
// the code from the mail, sign in. Saves screenshots. Invoked by tests/it/browser.rs:
//   node signup.mjs BASE_URL MAIL_DIR SCREENSHOT_PREFIX EMAIL
import { chromium } from 'playwright-core';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [base, mailDir, shots, email] = process.argv.slice(2);
const password = 'a long and unusual passphrase 7';

function mailTo(address) {
  let files = [];
  try { files = readdirSync(mailDir).filter((f) => f.endsWith('.eml')).sort(); } catch { return null; }
  for (const f of files.reverse()) {
    const text = readFileSync(join(mailDir, f), 'utf8');
    if (text.includes(`To: ${address}`)) return text;
  }
  return null;
}

async function waitForMail(address) {
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    const m = mailTo(address);
    if (m) return m.replace(/=\r?\n/g, '').replace(/=3D/g, '=');
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no mail to ${address} in ${mailDir}`);
}

const profile = mkdtempSync(join(tmpdir(), 'portcullis-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await context.newPage();
  await page.goto(`${base}/login`);
  await page.click('a[href^="/signup"]');
  await page.waitForURL(/\/signup/);
  await page.fill('#name', 'Browser Person');
  await page.fill('#email', email);
  await page.fill('#password', password);
  await page.fill('#password_confirm', password);
  await page.screenshot({ path: `${shots}-1-signup.png`, fullPage: true });
  await page.click('form[action="/signup"] button[type=submit]');
  await page.waitForSelector('form[action="/verify-email"]');
  const heading = await page.textContent('h1');
  if (!heading.includes('Confirm your e-mail address')) throw new Error(`unexpected page: ${heading}`);

  const mail = await waitForMail(email);
  const code = mail.split('verification page')[1].match(/\b(\d{6})\b/)[1];
  await page.fill('#code', code);
  await page.screenshot({ path: `${shots}-2-verify.png`, fullPage: true });
  await page.click('form[action="/verify-email"] button[type=submit]');
  await page.waitForURL(/\/login/);

  await page.fill('#email', email);
  await page.fill('#password', password);
  await page.click('form[action="/login"] button[type=submit]');
  await page.waitForSelector('text=You are signed in');
  await page.screenshot({ path: `${shots}-3-signed-in.png`, fullPage: true });
  const body = await page.textContent('main');
  if (!body.includes(email)) throw new Error('signed-in page does not name the account');
  console.log(JSON.stringify({ ok: true }));
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
