import { chromiumVersion, findChromium } from '../harness/browser.ts';

/** Finds (and for @sparticuz/chromium, unpacks) the browser once per run, and says which one. */
export default async function setup(): Promise<void> {
  const { executablePath, source } = await findChromium();
  console.log(`e2e: ${await chromiumVersion(executablePath)} from ${source} (${executablePath})`);
  // Test files run in child processes that inherit this environment: same binary, no second log line.
  process.env.TESSERA_CHROMIUM = executablePath;
  process.env.TESSERA_E2E_QUIET = '1';
}
