// The deployments file: defaults, validation that names every problem with its path.
import * as path from 'path';
import { ConfigError, loadDeployments, parseDeployments } from '../lib/config';
import { INFRA } from './helpers';

test('infra/deployments.json is valid, with distinct names', () => {
  const ds = loadDeployments(path.join(INFRA, 'deployments.json'));
  expect(ds.length).toBeGreaterThanOrEqual(2);
  expect(new Set(ds.map((d) => d.name)).size).toBe(ds.length);
});

test('defaults apply: 5-minute ticks, one tick at a time, a created VPC', () => {
  const [d] = parseDeployments({ deployments: [{ name: 'norris-x' }] });
  expect(d.schedulerRate).toBe('rate(5 minutes)');
  expect(d.reservedConcurrency.scheduler).toBe(1);
  expect(d.secretNamePrefix).toBe('norris/');
  expect('created' in d.vpc).toBe(true);
});

test('file defaults, then per-deployment values, win over built-in defaults', () => {
  const [a, b] = parseDeployments({
    defaults: { schedulerRate: 'rate(1 minute)' },
    deployments: [{ name: 'norris-a' }, { name: 'norris-b', schedulerRate: 'rate(10 minutes)', reservedConcurrency: { watcher: 9 } }],
  });
  expect(a.schedulerRate).toBe('rate(1 minute)');
  expect(b.schedulerRate).toBe('rate(10 minutes)');
  expect(b.reservedConcurrency).toEqual({ scheduler: 1, watcher: 9, rotation: 1, migrator: 2 });
});

test('every problem is reported with its path', () => {
  let err: ConfigError | undefined;
  try {
    parseDeployments({
      deployments: [
        { name: 'Norris_Prod', schedulerRate: 'every 5 minutes', colour: 'blue' },
        { name: 'norris-a', reservedConcurrency: { scheduler: 3 }, logRetentionDays: 42 },
        { name: 'norris-a', vpc: { import: { vpcId: 'vpc-123', availabilityZones: ['eu-west-1a'], privateSubnetIds: [] } } },
      ],
    });
  } catch (e) {
    err = e as ConfigError;
  }
  expect(err).toBeInstanceOf(ConfigError);
  const text = err!.problems.join('\n');
  expect(text).toContain('deployments[0].name: must be lower-case letters');
  expect(text).toContain('deployments[0].schedulerRate: must be an EventBridge rate(...) or cron(...) expression');
  expect(text).toContain('deployments[0].colour: unknown field');
  expect(text).toContain('deployments[1].reservedConcurrency.scheduler: must be a whole number between 1 and 2');
  expect(text).toContain('deployments[1].logRetentionDays: must be one of');
  expect(text).toContain('deployments[2].vpc.import.vpcId: must be a VPC id');
  expect(text).toContain('deployments[2].vpc.import.privateSubnetIds: must be a list of at least two subnet ids');
});

test('two deployments cannot share a name (their tables would collide)', () => {
  expect(() => parseDeployments({ deployments: [{ name: 'norris-a' }, { name: 'norris-a' }] }))
    .toThrow(/deployments\[1\].name: norris-a is used by another deployment/);
});

test('an imported VPC needs one private subnet per availability zone', () => {
  const [d] = parseDeployments({ deployments: [{ name: 'norris-a', vpc: { import: {
    vpcId: 'vpc-0123456789abcdef0', availabilityZones: ['eu-west-1a', 'eu-west-1b'],
    privateSubnetIds: ['subnet-0123456789abcdef0', 'subnet-0123456789abcdef1'],
  } } }] });
  expect(d.vpc).toEqual({ imported: expect.objectContaining({ vpcId: 'vpc-0123456789abcdef0' }) });
});
