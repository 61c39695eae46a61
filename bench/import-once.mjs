// Imports one bundle in this fresh process and prints how long that took, as one JSON line.
// Plain JavaScript on purpose: no loader (tsx) may run in the process being measured.
//
//   node [--enable-source-maps] bench/import-once.mjs <bundle.mjs> [construct]
//
// With `construct`, the bundle's exported construct() (the baseline's SDK clients) is called
// and timed separately. A bundle built with the client probe reports the SDK clients that
// were constructed while it was imported.
import { pathToFileURL } from 'node:url';

const [bundle, mode] = process.argv.slice(2);
const url = pathToFileURL(bundle).href;

const start = performance.now();
const startNs = process.hrtime.bigint();
const cpuStart = process.cpuUsage();
const mod = await import(url);
const cpu = process.cpuUsage(cpuStart);
const importMs = performance.now() - start;
const endNs = process.hrtime.bigint();
const clientsAtImport = globalThis.__benchSdkClients ? [...globalThis.__benchSdkClients] : null;

let constructMs = 0;
let constructCpuMs = 0;
let constructEndNs = endNs;
if (mode === 'construct') {
  const t = performance.now();
  const c = process.cpuUsage();
  mod.construct();
  const used = process.cpuUsage(c);
  constructMs = performance.now() - t;
  constructCpuMs = (used.user + used.system) / 1000;
  constructEndNs = process.hrtime.bigint();
}

process.stdout.write(
  `${JSON.stringify({
    importMs,
    importCpuMs: (cpu.user + cpu.system) / 1000,
    constructMs,
    constructCpuMs,
    bootMs: start,
    importStartUs: Number(startNs / 1000n),
    importEndUs: Number(endNs / 1000n),
    constructEndUs: Number(constructEndNs / 1000n),
    clientsAtImport,
  })}\n`,
);
