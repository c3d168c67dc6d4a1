#!/usr/bin/env node
// The norris CDK app: one stack per deployment in infra/deployments.json, checked by cdk-nag's
// AwsSolutions pack during synthesis (an unacknowledged finding fails `cdk synth`).
//
// Context:
//   -c norris:code=placeholder     use infra/placeholder instead of target/lambda/<fn>/bootstrap.zip
//                                  (tests and offline checks only; a deployed placeholder fails loudly)
//   -c norris:deployments=FILE     another deployments file (default infra/deployments.json)
import * as path from 'path';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { loadDeployments } from '../lib/config';
import { CodeSource, DEFAULT_TARGET_DIR, NorrisStack, stackName } from '../lib/norris-stack';

const app = new App();
const codeContext = app.node.tryGetContext('norris:code') ?? 'package';
if (codeContext !== 'package' && codeContext !== 'placeholder') {
  throw new Error(`norris:code must be "package" or "placeholder", is ${JSON.stringify(codeContext)}`);
}
const code: CodeSource = codeContext === 'placeholder' ? { kind: 'placeholder' } : { kind: 'package', targetDir: DEFAULT_TARGET_DIR };
const file = app.node.tryGetContext('norris:deployments') ?? path.join(__dirname, '..', 'deployments.json');

for (const deployment of loadDeployments(file)) {
  new NorrisStack(app, stackName(deployment), {
    deployment,
    code,
    description: `norris control plane, deployment ${deployment.name}`,
    env: {
      account: deployment.account ?? process.env.CDK_DEFAULT_ACCOUNT,
      region: deployment.region ?? process.env.CDK_DEFAULT_REGION,
    },
  });
}
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
app.synth();
