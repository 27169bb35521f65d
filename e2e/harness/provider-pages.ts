import type { Page } from 'playwright-core';

/**
 * The user at oidc-provider's development pages: once `page` was sent to `issuer`'s login page,
 * signs in as `ada` and consents. The provider then sends the page back to the app.
 */
export async function signInAtProvider(page: Page, issuer: string): Promise<void> {
  await page.waitForURL(`${issuer}/interaction/**`);
  await page.fill('input[name=login]', 'ada');
  await page.fill('input[name=password]', 'any password');
  await page.click('button[type=submit]');
  await page.waitForSelector('input[name=prompt][value=consent]', { state: 'attached' });
  await page.click('button[type=submit]');
}
