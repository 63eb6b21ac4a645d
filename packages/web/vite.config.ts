import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 800,
    rollupOptions: {
      output: {
        // The terminal and the chart are loaded only by the pages that use them.
        manualChunks: { react: ['react', 'react-dom', 'react-router-dom', '@tanstack/react-query'] },
      },
    },
  },
  server: { proxy: { '/api': 'http://127.0.0.1:8090', '/openapi.json': 'http://127.0.0.1:8090' } },
});
