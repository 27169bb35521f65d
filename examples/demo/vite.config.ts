import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The library straight from its source (public entry points only): no build of packages/tessera needed.
const src = (path: string) => fileURLToPath(new URL(`../../packages/tessera/src/${path}`, import.meta.url));

export default defineConfig({
  plugins: [react()],
  resolve: {
    alias: [
      { find: /^tessera$/, replacement: src('index.ts') },
      { find: /^tessera\/http$/, replacement: src('authorities/http.ts') },
      { find: /^tessera\/react$/, replacement: src('bindings/react.tsx') },
    ],
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    reportCompressedSize: false,
    rollupOptions: {
      // The reset link the server mails is /reset-password?token=…: the same page, served from there too.
      input: {
        main: fileURLToPath(new URL('index.html', import.meta.url)),
        reset: fileURLToPath(new URL('reset-password/index.html', import.meta.url)),
      },
    },
  },
});
