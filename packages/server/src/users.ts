import { randomUUID } from 'node:crypto';
import { hashPassword } from './passwords.ts';
import type { Store, UserRecord } from './store/types.ts';

export const MIN_PASSWORD_LENGTH = 8;
export const MAX_PASSWORD_LENGTH = 1024;
export const DEFAULT_ROLES = ['user'];

/** The user as the API shows it. */
export interface PublicUser {
  id: string;
  email: string;
  name: string | null;
  roles: string[];
}

export function publicUser(u: UserRecord): PublicUser {
  return { id: u.id, email: u.email, name: u.name, roles: u.roles };
}

/**
 * Trimmed, NFKC, lower case: the form e-mails are stored, looked up and compared in, so that
 * compatibility spellings (full-width `ｄｅｍｏ@…`, ligatures, mathematical letters) and case
 * cannot make a second account for the same address.
 */
export function normalizeEmail(email: string): string {
  return email.trim().normalize('NFKC').toLowerCase().normalize('NFKC');
}

/** Control and format characters (bidi overrides and isolates, zero-width joiners, soft hyphens, BOM). */
const INVISIBLE = /[\p{Cc}\p{Cf}]/u;

/** Whether the address contains characters that change how it displays without being seen. */
export function hasInvisibleCharacters(email: string): boolean {
  return INVISIBLE.test(email);
}

export function looksLikeEmail(email: string): boolean {
  return email.length <= 254 && /^[^\s@]+@[^\s@]+$/.test(email);
}

/** Password length in code points, so one emoji counts once. */
export function passwordTooShort(password: string): boolean {
  return [...password].length < MIN_PASSWORD_LENGTH;
}

/**
 * Creates a user unless the e-mail is taken (resolves null then).
 * @example await createUser(store, { email: 'a@b.c', password: 'long enough' }, 1024)
 */
export async function createUser(
  store: Store,
  input: { email: string; password: string; name?: string | null | undefined; roles?: string[] },
  scryptCost: number,
  now: number = Date.now(),
): Promise<UserRecord | null> {
  return store.createUser({
    id: randomUUID(),
    email: normalizeEmail(input.email),
    name: input.name ?? null,
    roles: input.roles ?? DEFAULT_ROLES,
    passwordHash: await hashPassword(input.password, scryptCost),
    createdAt: now,
  });
}

/** Creates the user when its e-mail is not registered yet (seeding the demo account). */
export async function ensureUser(
  store: Store,
  input: { email: string; password: string; name?: string; roles?: string[] },
  scryptCost: number,
): Promise<UserRecord> {
  const existing = await store.findUserByEmail(normalizeEmail(input.email));
  if (existing) return existing;
  return (await createUser(store, input, scryptCost)) ?? (await store.findUserByEmail(normalizeEmail(input.email)))!;
}
