// Several isolated deployments in one app, an imported VPC, and where the functions' code comes from.
import * as fs from 'fs';
import * as path from 'path';
import { Template } from 'aws-cdk-lib/assertions';
import { loadDeployments } from '../lib/config';
import { FUNCTIONS } from '../lib/norris-stack';
import { buildStack, deployment, INFRA, newApp, resources, tempDir } from './helpers';

test('every deployment of deployments.json is its own stack with its own names', () => {
  const app = newApp();
  const stacks = loadDeployments(path.join(INFRA, 'deployments.json')).map((d) => buildStack(d, { app }));
  const names = stacks.map((s) => {
    const t = Template.fromStack(s);
    const tables = resources(t, 'AWS::DynamoDB::Table').map(([, r]) => r.Properties.TableName as string);
    const fns = resources(t, 'AWS::Lambda::Function').map(([, r]) => r.Properties.FunctionName as string);
    for (const n of [...tables, ...fns]) expect(n.startsWith(`${s.deployment.name}-`)).toBe(true);
    for (const [, f] of resources(t, 'AWS::Lambda::Function')) {
      expect(f.Properties.Environment.Variables.NORRIS_TABLE_PREFIX).toBe(s.deployment.name);
    }
    return [...tables, ...fns];
  });
  const all = names.flat();
  expect(new Set(all).size).toBe(all.length);
});

test('an imported VPC: no network created, functions in the given subnets', () => {
  const subnets = ['subnet-0123456789abcdef0', 'subnet-0123456789abcdef1'];
  const t = Template.fromStack(buildStack(deployment({
    vpc: { import: { vpcId: 'vpc-0123456789abcdef0', availabilityZones: ['eu-west-1a', 'eu-west-1b'], privateSubnetIds: subnets } },
  })));
  t.resourceCountIs('AWS::EC2::VPC', 0);
  t.resourceCountIs('AWS::EC2::NatGateway', 0);
  for (const [, f] of resources(t, 'AWS::Lambda::Function')) expect(f.Properties.VpcConfig.SubnetIds).toEqual(subnets);
  for (const [, sg] of resources(t, 'AWS::EC2::SecurityGroup')) expect(sg.Properties.VpcId).toBe('vpc-0123456789abcdef0');
  const watcher = resources(t, 'AWS::Lambda::Function').find(([, f]) => f.Properties.FunctionName.endsWith('cluster-health-watcher'))!;
  expect(watcher[1].Properties.Environment.Variables.NORRIS_EMR_SUBNET_IDS).toBe(subnets.join(','));
});

test('a configurable scheduler rate', () => {
  const t = Template.fromStack(buildStack(deployment({ schedulerRate: 'rate(1 minute)' })));
  t.hasResourceProperties('AWS::Events::Rule', { Name: 'norris-test-scheduler-tick', ScheduleExpression: 'rate(1 minute)' });
});

test('packaged code: synthesis names the missing zip and how to build it', () => {
  const empty = tempDir('norris-target-');
  expect(() => buildStack(deployment(), { code: { kind: 'package', targetDir: empty } }))
    .toThrow(/extraction-scheduler\/bootstrap.zip is missing: run `make package`/);
});

test('packaged code: each function deploys its own bootstrap.zip', () => {
  const dir = tempDir('norris-target-');
  for (const fn of FUNCTIONS) {
    fs.mkdirSync(path.join(dir, fn));
    fs.writeFileSync(path.join(dir, fn, 'bootstrap.zip'), `not really a zip: ${fn}`);
  }
  const t = Template.fromStack(buildStack(deployment(), { code: { kind: 'package', targetDir: dir } }));
  const keys = resources(t, 'AWS::Lambda::Function').map(([, f]) => JSON.stringify(f.Properties.Code.S3Key));
  expect(new Set(keys).size).toBe(4);
});
