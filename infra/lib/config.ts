// The deployments of one CDK app: infra/deployments.json, each entry one isolated stack (its own
// tables, functions, queues, buckets, EMR roles and security groups), e.g. one per country or
// environment. Every problem in the file is collected and reported at once, with its path.
import * as fs from 'fs';

/** Reserved concurrency per function. */
export interface Concurrency {
  readonly scheduler: number;
  readonly watcher: number;
  readonly rotation: number;
  readonly migrator: number;
}

/** An existing VPC to run in (the one that can reach the JDBC sources). */
export interface ImportedVpc {
  readonly vpcId: string;
  readonly availabilityZones: string[];
  /** Private subnets (with a route to S3 and the AWS APIs) for the functions and the EMR clusters. */
  readonly privateSubnetIds: string[];
}

/** A VPC the stack creates (public + private subnets, gateway endpoints, flow logs). */
export interface CreatedVpc {
  readonly cidr: string;
  readonly maxAzs: number;
  readonly natGateways: number;
}

/** One deployment, after defaults are applied. */
export interface Deployment {
  /** The deployment's name: table prefix (`<name>-jobs`, ...), the `Deployment` metric dimension,
   * the `norris:deployment` tag value on everything it owns, the prefix of its resource names. */
  readonly name: string;
  readonly account?: string;
  readonly region?: string;
  readonly schedulerRate: string;
  readonly rotationRate: string;
  readonly sweepRate: string;
  readonly watermarkLagSloSecs: number;
  /** Per-job SLO overrides (job id -> seconds): one extra alarm each. */
  readonly jobLagSlos: Record<string, number>;
  readonly logRetentionDays: number;
  readonly reservedConcurrency: Concurrency;
  /** Secrets Manager name prefix the EMR instance role may read (JDBC credentials). */
  readonly secretNamePrefix: string;
  /** Where alarm notifications go, besides the SNS topic (optional). */
  readonly alarmEmail?: string;
  /** An `s3://bucket/key.zip` of PEM certificates: enables EMR in-transit encryption. */
  readonly emrTlsCertificatesS3Uri?: string;
  readonly vpc: { readonly imported: ImportedVpc } | { readonly created: CreatedVpc };
}

const DEFAULTS = {
  schedulerRate: 'rate(5 minutes)',
  rotationRate: 'rate(10 minutes)',
  sweepRate: 'rate(1 minute)',
  watermarkLagSloSecs: 3600,
  logRetentionDays: 365,
  reservedConcurrency: { scheduler: 1, watcher: 5, rotation: 1, migrator: 2 },
  secretNamePrefix: 'norris/',
  vpc: { create: { cidr: '10.40.0.0/16', maxAzs: 2, natGateways: 1 } },
};

const KNOWN_KEYS = new Set([
  'name', 'account', 'region', 'schedulerRate', 'rotationRate', 'sweepRate', 'watermarkLagSloSecs', 'jobLagSlos',
  'logRetentionDays', 'reservedConcurrency', 'secretNamePrefix', 'alarmEmail', 'emrTlsCertificatesS3Uri', 'vpc',
]);
// CloudWatch Logs accepts only these retention periods.
const RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/** A deployments file with problems: every one of them, each with its path. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid deployments configuration:\n  ${problems.join('\n  ')}`);
  }
}

type Json = unknown;
const isObject = (v: Json): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses and validates a deployments document (`{defaults?, deployments: [...]}`). */
export function parseDeployments(doc: Json): Deployment[] {
  const problems: string[] = [];
  if (!isObject(doc)) throw new ConfigError(['the document must be a JSON object']);
  const defaults = doc.defaults === undefined ? {} : doc.defaults;
  if (!isObject(defaults)) throw new ConfigError(['defaults: must be an object']);
  if (!Array.isArray(doc.deployments) || doc.deployments.length === 0) {
    throw new ConfigError(['deployments: must be a non-empty list']);
  }
  for (const key of Object.keys(doc)) {
    if (!['defaults', 'deployments', '_comment'].includes(key)) problems.push(`${key}: unknown field`);
  }
  const out: Deployment[] = [];
  const seen = new Set<string>();
  doc.deployments.forEach((raw: Json, i: number) => {
    const at = `deployments[${i}]`;
    if (!isObject(raw)) {
      problems.push(`${at}: must be an object`);
      return;
    }
    const merged: Record<string, Json> = { ...DEFAULTS, ...defaults, ...raw };
    for (const key of [...Object.keys(defaults), ...Object.keys(raw)]) {
      if (!KNOWN_KEYS.has(key) && key !== '_comment') problems.push(`${at}.${key}: unknown field`);
    }
    const d = readDeployment(merged, at, problems);
    if (d) {
      if (seen.has(d.name)) problems.push(`${at}.name: ${d.name} is used by another deployment`);
      seen.add(d.name);
      out.push(d);
    }
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return out;
}

/** Reads and validates a deployments file. */
export function loadDeployments(file: string): Deployment[] {
  let doc: Json;
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ConfigError([`${file}: ${(e as Error).message}`]);
  }
  return parseDeployments(doc);
}

function readDeployment(m: Record<string, Json>, at: string, problems: string[]): Deployment | undefined {
  const before = problems.length;
  const str = (key: string, pattern: RegExp, what: string, optional = false): string | undefined => {
    const v = m[key];
    if (v === undefined || v === null) {
      if (!optional) problems.push(`${at}.${key}: required (${what})`);
      return undefined;
    }
    if (typeof v !== 'string' || !pattern.test(v)) {
      problems.push(`${at}.${key}: must be ${what}, is ${JSON.stringify(v)}`);
      return undefined;
    }
    return v;
  };
  const int = (v: Json, path: string, min: number, max: number): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      problems.push(`${path}: must be a whole number between ${min} and ${max}, is ${JSON.stringify(v)}`);
      return min;
    }
    return v;
  };
  const rate = /^rate\((1 (minute|hour|day)|([2-9]|[1-9][0-9]+) (minutes|hours|days))\)$|^cron\([^()]+\)$/;

  const name = str('name', /^[a-z][a-z0-9-]{1,30}[a-z0-9]$/, 'lower-case letters, digits and "-", 3 to 32 characters, starting with a letter');
  const account = str('account', /^[0-9]{12}$/, 'a 12-digit account id', true);
  const region = str('region', /^[a-z]{2}(-[a-z]+)+-[0-9]$/, 'a region name such as eu-west-1', true);
  const schedulerRate = str('schedulerRate', rate, 'an EventBridge rate(...) or cron(...) expression');
  const rotationRate = str('rotationRate', rate, 'an EventBridge rate(...) or cron(...) expression');
  const sweepRate = str('sweepRate', rate, 'an EventBridge rate(...) or cron(...) expression');
  const secretNamePrefix = str('secretNamePrefix', /^[A-Za-z0-9/_+=.@-]{1,256}\/$/, 'a Secrets Manager name prefix ending in "/"');
  const alarmEmail = str('alarmEmail', /^[^@\s]+@[^@\s]+\.[^@\s]+$/, 'an e-mail address', true);
  const emrTlsCertificatesS3Uri = str('emrTlsCertificatesS3Uri', /^s3:\/\/[a-z0-9.-]{3,63}\/.+\.zip$/, 'an s3://bucket/key.zip URI', true);
  const watermarkLagSloSecs = int(m.watermarkLagSloSecs, `${at}.watermarkLagSloSecs`, 60, 30 * 86400);
  const logRetentionDays = int(m.logRetentionDays, `${at}.logRetentionDays`, 1, 3653);
  if (!RETENTION_DAYS.includes(logRetentionDays)) {
    problems.push(`${at}.logRetentionDays: must be one of ${RETENTION_DAYS.join(', ')}`);
  }

  const jobLagSlos: Record<string, number> = {};
  const rawSlos = m.jobLagSlos ?? {};
  if (!isObject(rawSlos)) problems.push(`${at}.jobLagSlos: must be an object of job id -> seconds`);
  else {
    for (const [job, secs] of Object.entries(rawSlos)) {
      if (!/^[A-Za-z0-9._-]{1,128}$/.test(job)) problems.push(`${at}.jobLagSlos.${job}: not a job id`);
      jobLagSlos[job] = int(secs, `${at}.jobLagSlos.${job}`, 60, 30 * 86400);
    }
  }

  const rc = m.reservedConcurrency;
  let reservedConcurrency: Concurrency = DEFAULTS.reservedConcurrency;
  if (!isObject(rc)) problems.push(`${at}.reservedConcurrency: must be an object`);
  else {
    const merged = { ...DEFAULTS.reservedConcurrency, ...rc };
    for (const key of Object.keys(rc)) {
      if (!(key in DEFAULTS.reservedConcurrency)) problems.push(`${at}.reservedConcurrency.${key}: unknown function`);
    }
    reservedConcurrency = {
      scheduler: int(merged.scheduler, `${at}.reservedConcurrency.scheduler`, 1, 2),
      watcher: int(merged.watcher, `${at}.reservedConcurrency.watcher`, 1, 100),
      rotation: int(merged.rotation, `${at}.reservedConcurrency.rotation`, 1, 10),
      migrator: int(merged.migrator, `${at}.reservedConcurrency.migrator`, 1, 100),
    };
  }

  let vpc: Deployment['vpc'] | undefined;
  const v = m.vpc;
  if (!isObject(v) || (v.create === undefined) === (v.import === undefined)) {
    problems.push(`${at}.vpc: must be {"create": {...}} or {"import": {"vpcId", "availabilityZones", "privateSubnetIds"}}`);
  } else if (isObject(v.import)) {
    const imp = v.import;
    const ids = (key: string, pattern: RegExp, what: string): string[] => {
      const list = imp[key];
      if (!Array.isArray(list) || list.length < 2 || !list.every((s) => typeof s === 'string' && pattern.test(s))) {
        problems.push(`${at}.vpc.import.${key}: must be a list of at least two ${what}`);
        return [];
      }
      return list as string[];
    };
    const vpcId = typeof imp.vpcId === 'string' && /^vpc-[0-9a-f]{8,17}$/.test(imp.vpcId) ? imp.vpcId : undefined;
    if (!vpcId) problems.push(`${at}.vpc.import.vpcId: must be a VPC id (vpc-...)`);
    const availabilityZones = ids('availabilityZones', /^[a-z]{2}(-[a-z]+)+-[0-9][a-z]$/, 'availability zone names');
    const privateSubnetIds = ids('privateSubnetIds', /^subnet-[0-9a-f]{8,17}$/, 'subnet ids');
    if (availabilityZones.length !== privateSubnetIds.length) {
      problems.push(`${at}.vpc.import: one private subnet per availability zone, in the same order`);
    }
    if (vpcId) vpc = { imported: { vpcId, availabilityZones, privateSubnetIds } };
  } else if (isObject(v.create)) {
    const c = { ...DEFAULTS.vpc.create, ...v.create };
    const cidr = typeof c.cidr === 'string' && /^10\.[0-9]{1,3}\.0\.0\/16$/.test(c.cidr) ? c.cidr : undefined;
    if (!cidr) problems.push(`${at}.vpc.create.cidr: must be a 10.x.0.0/16 block`);
    vpc = {
      created: {
        cidr: cidr ?? '',
        maxAzs: int(c.maxAzs, `${at}.vpc.create.maxAzs`, 2, 3),
        natGateways: int(c.natGateways, `${at}.vpc.create.natGateways`, 1, 3),
      },
    };
  } else {
    problems.push(`${at}.vpc: "create" or "import" must be an object`);
  }

  if (problems.length > before || !name || !schedulerRate || !rotationRate || !sweepRate || !secretNamePrefix || !vpc) {
    return undefined;
  }
  return {
    name, account, region, schedulerRate, rotationRate, sweepRate, watermarkLagSloSecs, jobLagSlos, logRetentionDays,
    reservedConcurrency, secretNamePrefix, alarmEmail, emrTlsCertificatesS3Uri, vpc,
  };
}
