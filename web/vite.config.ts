/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// In development the engine runs beside Vite; the proxy keeps the app same-origin, as it is
// when the engine serves the build (cookies and the CSP need that).
const engine = process.env.ENGINE_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react()],
  server: { proxy: { "/api": { target: engine, changeOrigin: false } } },
  build: { target: "es2022", sourcemap: false, manifest: true, chunkSizeWarningLimit: 600 },
  test: {
    environment: "jsdom",
    globals: true,
    setupFiles: ["./src/test-setup.ts"],
    include: ["src/**/*.test.{ts,tsx}"],
    // user-event tests take seconds on a busy 2-core machine.
    testTimeout: 30_000,
  },
});
