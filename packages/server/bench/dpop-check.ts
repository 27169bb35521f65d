/**
 * What checking one DPoP proof costs the server (µs per proof): the ES256 verification over the
 * embedded key plus the jti replay record, in memory and in an in-memory PGlite store.
 * `npx tsx bench/dpop-check.ts`
 */
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { checkProof, memoryReplayCache, type ReplayCache } from '../src/dpop.ts';
import { openPgliteStore } from '../src/store/pglite.ts';

const N = 2000;
const WARMUP = 100;
const url = 'https://api.example.test/x';
const { privateKey, publicKey } = await generateKeyPair('ES256');
const jwk = await exportJWK(publicKey);
const proofs = () =>
  Promise.all(
    Array.from({ length: N }, () =>
      new SignJWT({ htm: 'GET', htu: url, iat: Math.floor(Date.now() / 1000), jti: randomUUID() }).setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk }).sign(privateKey),
    ),
  );

async function measure(name: string, replay: ReplayCache): Promise<void> {
  const list = await proofs();
  for (const p of list.slice(0, WARMUP)) await checkProof(p, { method: 'GET', url, now: Date.now(), replay });
  const t0 = performance.now();
  let accepted = 0;
  for (const p of list.slice(WARMUP)) accepted += (await checkProof(p, { method: 'GET', url, now: Date.now(), replay })).ok ? 1 : 0;
  const us = ((performance.now() - t0) * 1000) / (N - WARMUP);
  console.log(`| ${name} | ${N - WARMUP} | ${accepted} | ${us.toFixed(0)} |`);
}

console.log(`load average ${loadavg()[0]!.toFixed(2)}\n\n| replay cache | proofs | accepted | µs per proof |\n|---|---|---|---|`);
await measure('memory', memoryReplayCache());
const store = await openPgliteStore();
await measure('PGlite store', store);
await store.close();
