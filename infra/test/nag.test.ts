// cdk-nag (AwsSolutions): with the stack's acknowledgements there is no finding left; without them,
// the findings are exactly the acknowledged ones (no stale acknowledgement, none without a reason).
import * as fs from 'fs';
import * as path from 'path';
import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { NorrisStack } from '../lib/norris-stack';
import { buildStack, deployment, newApp } from './helpers';

interface Finding { readonly rule: string; readonly path: string }

function findings(acknowledge: boolean): { stack: NorrisStack; found: Finding[] } {
  const app = newApp();
  const stack = buildStack(deployment(), { app, acknowledge });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  try {
    app.synth();
  } catch (e) {
    // Synthesis stops on findings; the report is written first.
    if (!fs.existsSync(path.join(app.outdir, 'validation-report.json'))) throw e;
  }
  const report = JSON.parse(fs.readFileSync(path.join(app.outdir, 'validation-report.json'), 'utf8'));
  const found: Finding[] = [];
  for (const plugin of report.pluginReports) {
    for (const v of plugin.violations) {
      for (const c of v.violatingConstructs) found.push({ rule: v.ruleName, path: c.constructPath });
    }
  }
  return { stack, found };
}

test('no unacknowledged AwsSolutions finding', () => {
  expect(findings(true).found).toEqual([]);
});

test('every acknowledgement is needed and has a reason', () => {
  const { stack, found } = findings(false);
  const key = (rule: string, p: string) => `${p.replace(/\/Resource$/, '')} ${rule}`;
  const acknowledged = stack.nagAcknowledgements.map((a) => key(a.id, a.construct.node.path)).sort();
  expect(found.map((f) => key(f.rule, f.path)).sort()).toEqual(acknowledged);
  for (const a of stack.nagAcknowledgements) expect(a.reason.length).toBeGreaterThan(40);
});
