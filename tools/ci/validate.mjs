// Validates every document of rendered Kubernetes manifests against the Kubernetes OpenAPI
// schemas (kubernetes-models, Prometheus Operator CRDs). With --strict, unknown or misspelt
// fields are rejected too: every object becomes a typed literal and tsc's excess-property
// check runs over them (the equivalent of `kubeconform -strict`).
// Usage: node tools/ci/validate.mjs [--strict] FILE.yaml...   Prints "N passed, N failed".
import { readFileSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

const here = dirname(fileURLToPath(import.meta.url));
const strict = process.argv.includes("--strict");
const files = process.argv.slice(2).filter((a) => a !== "--strict");
const pkgFor = (v) =>
  v.startsWith("monitoring.coreos.com/") ? "@kubernetes-models/prometheus-operator" : "kubernetes-models";
// The API server treats a key set to null as absent.
const dropNulls = (v) =>
  Array.isArray(v)
    ? v.map(dropNulls)
    : v && typeof v === "object"
      ? Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null).map(([k, x]) => [k, dropNulls(x)]))
      : v;

if (files.length === 0) {
  console.error("usage: node validate.mjs [--strict] FILE.yaml...");
  process.exit(2);
}
let ok = 0, bad = 0, ts = "";
for (const file of files) {
  for (const d of parseAllDocuments(readFileSync(file, "utf8"))) {
    if (d.errors.length) { bad++; console.error(`FAIL ${file}: YAML: ${d.errors[0].message}`); continue; }
    const o = d.toJS();
    if (!o) continue;
    const id = `${file}: ${o.apiVersion} ${o.kind}/${o.metadata?.name}`;
    let Cls;
    try { Cls = (await import(`${pkgFor(o.apiVersion ?? "")}/${o.apiVersion}`))[o.kind]; } catch {}
    if (!Cls) { bad++; console.error(`FAIL ${id}: no schema for this apiVersion/kind`); continue; }
    try { new Cls(o).validate(); ok++; } catch (e) { bad++; console.error(`FAIL ${id}: ${e.message}`); continue; }
    if (strict)
      ts += `// ${id}\nimport type { I${o.kind} as T${ok} } from "${pkgFor(o.apiVersion)}/${o.apiVersion}/${o.kind}";\n` +
        `export const o${ok}: T${ok} = ${JSON.stringify(dropNulls(o), null, 1)};\n`;
  }
}
if (strict && ts) {
  const f = join(here, ".strict-check.ts");
  writeFileSync(f, ts);
  try {
    execFileSync(join(here, "node_modules/.bin/tsc"), ["--noEmit", "--strict", "--skipLibCheck",
      "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022", f], { stdio: "inherit" });
  } catch {
    bad++;
    console.error(`FAIL strict: unknown or mistyped fields (lines refer to ${f})`);
  }
}
console.log(`${ok} passed, ${bad} failed`);
process.exit(bad ? 1 : 0);
