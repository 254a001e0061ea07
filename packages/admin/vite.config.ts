import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';

// The static output goes into @herald/server (packages/server/admin-ui, gitignored, shipped in its tarball), which
// serves it under admin.handler_prefix; relative asset URLs make any prefix work.
export default defineConfig({
  base: './',
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL('../server/admin-ui', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    reportCompressedSize: false,
  },
});
