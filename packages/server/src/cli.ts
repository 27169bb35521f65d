#!/usr/bin/env node
/**
 * `tessera-server`: the token server as a command. `tessera-server --help` lists every setting
 * (flags, or environment variables). The demo of this repository runs src/demo.ts instead.
 */
import { launch } from './launch.ts';

await launch(process.argv.slice(2), process.env);
