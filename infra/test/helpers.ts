// Shared test setup: an App with cdk.json's context (feature flags), stacks built from a
// deployments document with the placeholder code, and small template helpers.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Deployment, parseDeployments } from '../lib/config';
import { CodeSource, NorrisStack, stackName } from '../lib/norris-stack';

export const INFRA = path.join(__dirname, '..');

export function cdkContext(): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(INFRA, 'cdk.json'), 'utf8')).context;
}

const tempDirs: string[] = [];

/** A temporary directory, removed after the test file's tests. */
export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

afterAll(() => {
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

export function newApp(): App {
  return new App({ context: cdkContext(), outdir: tempDir('norris-cdk-') });
}

export function deployment(overrides: Record<string, unknown> = {}): Deployment {
  return parseDeployments({ deployments: [{ name: 'norris-test', ...overrides }] })[0];
}

export function buildStack(d: Deployment, opts: { app?: App; code?: CodeSource; acknowledge?: boolean } = {}): NorrisStack {
  return new NorrisStack(opts.app ?? newApp(), stackName(d), {
    deployment: d,
    code: opts.code ?? { kind: 'placeholder' },
    acknowledgeNagFindings: opts.acknowledge,
  });
}

export type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

export function resources(template: Template, type: string): [string, Json][] {
  return Object.entries(template.findResources(type));
}

export interface Statement {
  readonly policy: string;
  readonly Sid?: string;
  readonly Effect: string;
  readonly Action: string[];
  readonly Resource: Json[];
  readonly Condition?: Json;
}

const list = (v: Json): Json[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** Every identity-policy statement in the template (AWS::IAM::Policy and roles' inline policies). */
export function identityStatements(template: Template): Statement[] {
  const out: Statement[] = [];
  for (const [id, r] of resources(template, 'AWS::IAM::Policy')) {
    for (const s of r.Properties.PolicyDocument.Statement) {
      out.push({ ...s, policy: id, Action: list(s.Action), Resource: list(s.Resource) });
    }
  }
  for (const [id, r] of resources(template, 'AWS::IAM::Role')) {
    for (const p of r.Properties.Policies ?? []) {
      for (const s of p.PolicyDocument.Statement) out.push({ ...s, policy: `${id}/${p.PolicyName}`, Action: list(s.Action), Resource: list(s.Resource) });
    }
  }
  return out;
}

/** The logical id of the only resource of `type` whose id starts with `prefix`. */
export function logicalId(template: Template, type: string, prefix: string): string {
  const ids = Object.keys(template.findResources(type)).filter((k) => k.startsWith(prefix));
  if (ids.length !== 1) throw new Error(`expected one ${type} named ${prefix}*, found ${ids.join(', ') || 'none'}`);
  return ids[0];
}

/** Roles attached to a policy resource. */
export function policyRoles(template: Template, policyId: string): string[] {
  const p = template.toJSON().Resources[policyId];
  return (p?.Properties?.Roles ?? []).map((r: Json) => r.Ref);
}
