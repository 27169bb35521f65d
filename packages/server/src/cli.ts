#!/usr/bin/env node
/**
 * `tessera-server`: the token server as a command. `tessera-server --help` lists every setting
 * (flags, or environment variables); `tessera-server rotate-key` starts a signing-key rotation.
 * The demo of this repository runs src/demo.ts instead.
 */
import { launch } from './launch.ts';
import { rotateKey } from './rotate-key.ts';

const [first, ...rest] = process.argv.slice(2);
if (first === 'rotate-key') process.exitCode = await rotateKey(rest, process.env);
else await launch(process.argv.slice(2), process.env);
