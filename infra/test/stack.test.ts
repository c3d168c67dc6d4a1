// Assertions on the synthesized template of one deployment (the stack creates its VPC): the
// tables match tables.json, the functions and their wiring, and, explicitly, the IAM and network
// properties the deployment promises.
import { Match, Template } from 'aws-cdk-lib/assertions';
import { loadTables } from '../lib/tables';
import { clusterAlarmPrefix, DEPLOYMENT_TAG, FUNCTIONS, LIVY_PORT, NorrisStack, SPEC_RETENTION_DAYS } from '../lib/norris-stack';
import { buildStack, deployment, identityStatements, Json, logicalId, policyRoles, resources, Statement } from './helpers';

const NAME = 'norris-test';
let stack: NorrisStack;
let template: Template;
let statements: Statement[];

beforeAll(() => {
  stack = buildStack(deployment({ jobLagSlos: { 'shop.orders': 900 } }));
  template = Template.fromStack(stack);
  statements = identityStatements(template);
});

const ref = (id: string) => ({ Ref: id });
const getAtt = (id: string, attr: string) => ({ 'Fn::GetAtt': [id, attr] });
const fnId = (fn: string) => logicalId(template, 'AWS::Lambda::Function', fn.split('-').map((w) => w[0].toUpperCase() + w.slice(1)).join(''));
const roleOf = (fn: string) => template.toJSON().Resources[fnId(fn)].Properties.Role['Fn::GetAtt'][0];
const statementsOf = (fn: string) => statements.filter((s) => policyRoles(template, s.policy).includes(roleOf(fn)));

describe('tables from infra/tables.json', () => {
  const defs = loadTables();

  test('one table per definition, named <prefix>-<key>, keys and indexes as defined', () => {
    expect(resources(template, 'AWS::DynamoDB::Table')).toHaveLength(defs.length);
    for (const def of defs) {
      const keySchema = [{ AttributeName: def.partitionKey.name, KeyType: 'HASH' }];
      if (def.sortKey) keySchema.push({ AttributeName: def.sortKey.name, KeyType: 'RANGE' });
      template.hasResourceProperties('AWS::DynamoDB::Table', {
        TableName: `${NAME}-${def.key}`,
        KeySchema: keySchema,
        BillingMode: 'PAY_PER_REQUEST',
        GlobalSecondaryIndexes: def.indexes.length === 0 ? Match.absent() : def.indexes.map((ix) => ({
          IndexName: ix.name,
          KeySchema: [{ AttributeName: ix.partitionKey.name, KeyType: 'HASH' },
            ...(ix.sortKey ? [{ AttributeName: ix.sortKey.name, KeyType: 'RANGE' }] : [])],
          Projection: { ProjectionType: ix.projection },
        })),
      });
    }
  });

  test('the ledger has the due and active indexes', () => {
    const ledger = resources(template, 'AWS::DynamoDB::Table').find(([, r]) => r.Properties.TableName === `${NAME}-ledger`)!;
    expect(ledger[1].Properties.GlobalSecondaryIndexes.map((ix: Json) => ix.IndexName).sort()).toEqual(['active', 'due']);
  });

  test('the ledger indexes copy keys only (an index copy is billed like a write: one unit, not the item\'s size)', () => {
    const ledger = resources(template, 'AWS::DynamoDB::Table').find(([, r]) => r.Properties.TableName === `${NAME}-ledger`)!;
    for (const ix of ledger[1].Properties.GlobalSecondaryIndexes) {
      expect(ix.Projection).toEqual({ ProjectionType: 'KEYS_ONLY' });
    }
  });

  test('every table: point-in-time recovery, KMS encryption, deletion protection, retained', () => {
    for (const [, r] of resources(template, 'AWS::DynamoDB::Table')) {
      expect(r.Properties.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
      expect(r.Properties.SSESpecification).toMatchObject({ SSEEnabled: true, SSEType: 'KMS' });
      expect(r.Properties.DeletionProtectionEnabled).toBe(true);
      expect(r.DeletionPolicy).toBe('Retain');
    }
  });

  test('TTL exactly where tables.json names an attribute', () => {
    for (const def of defs) {
      const [, r] = resources(template, 'AWS::DynamoDB::Table').find(([, t]) => t.Properties.TableName === `${NAME}-${def.key}`)!;
      if (def.ttlAttribute) expect(r.Properties.TimeToLiveSpecification).toEqual({ AttributeName: def.ttlAttribute, Enabled: true });
      else expect(r.Properties.TimeToLiveSpecification).toBeUndefined();
    }
  });
});

describe('functions', () => {
  test('four functions: provided.al2023 on x86_64, JSON logs, the table prefix, in the VPC, with a DLQ', () => {
    expect(resources(template, 'AWS::Lambda::Function')).toHaveLength(4);
    const sg = logicalId(template, 'AWS::EC2::SecurityGroup', 'ControlPlaneSg');
    for (const fn of FUNCTIONS) {
      const props = template.toJSON().Resources[fnId(fn)].Properties;
      expect(props).toMatchObject({
        FunctionName: `${NAME}-${fn}`,
        Runtime: 'provided.al2023',
        Architectures: ['x86_64'],
        Handler: 'bootstrap',
        LoggingConfig: { LogFormat: 'JSON' },
        Environment: { Variables: { NORRIS_TABLE_PREFIX: NAME } },
        VpcConfig: { SecurityGroupIds: [getAtt(sg, 'GroupId')] },
      });
      expect(props.DeadLetterConfig.TargetArn['Fn::GetAtt'][1]).toBe('Arn');
      expect(props.KmsKeyArn).toBeDefined();
      expect(props.Timeout).toBeLessThanOrEqual(300);
    }
  });

  test('reserved concurrency sized for the work: one scheduler tick at a time', () => {
    const rc = (fn: string) => template.toJSON().Resources[fnId(fn)].Properties.ReservedConcurrentExecutions;
    expect(rc('extraction-scheduler')).toBe(1);
    expect(rc('rotation-handler')).toBe(1);
    expect(rc('cluster-health-watcher')).toBe(5);
    expect(rc('job-migrator')).toBe(2);
    // A tick must end before the next one is due (rate 5 minutes).
    expect(template.toJSON().Resources[fnId('extraction-scheduler')].Properties.Timeout).toBeLessThan(300);
  });

  test('asynchronous invocation retries are bounded for every function', () => {
    const configs = resources(template, 'AWS::Lambda::EventInvokeConfig');
    expect(configs).toHaveLength(4);
    for (const [, c] of configs) {
      expect(c.Properties.MaximumRetryAttempts).toBeLessThanOrEqual(2);
      expect(c.Properties.MaximumEventAgeInSeconds).toBeGreaterThanOrEqual(60);
    }
  });

  test('log groups are the functions\' own, encrypted, with retention', () => {
    for (const fn of FUNCTIONS) {
      template.hasResourceProperties('AWS::Logs::LogGroup', {
        LogGroupName: `/aws/lambda/${NAME}-${fn}`, RetentionInDays: 365, KmsKeyId: Match.anyValue(),
      });
    }
  });
});

describe('EventBridge rules', () => {
  const rules = () => resources(template, 'AWS::Events::Rule');
  const targetsOf = (pred: (r: Json) => boolean) => rules().filter(([, r]) => pred(r.Properties)).flatMap(([, r]) => r.Properties.Targets);
  const arnOf = (fn: string) => getAtt(fnId(fn), 'Arn');

  test('the scheduler ticks at the configured rate', () => {
    const t = targetsOf((p) => p.ScheduleExpression === 'rate(5 minutes)' && p.Name === `${NAME}-scheduler-tick`);
    expect(t.map((x: Json) => x.Arn)).toEqual([arnOf('extraction-scheduler')]);
  });

  test('EMR, spot and alarm events go to the watcher', () => {
    const watcher = arnOf('cluster-health-watcher');
    const byPattern = (source: string, detailType: string) =>
      targetsOf((p) => p.EventPattern?.source?.includes(source) && p.EventPattern['detail-type'].includes(detailType)).map((x: Json) => x.Arn);
    expect(byPattern('aws.emr', 'EMR Cluster State Change')).toEqual([watcher]);
    expect(byPattern('aws.ec2', 'EC2 Spot Instance Interruption Warning')).toEqual([watcher]);
    expect(byPattern('aws.ec2', 'EC2 Instance Rebalance Recommendation')).toEqual([watcher]);
    expect(byPattern('aws.cloudwatch', 'CloudWatch Alarm State Change')).toEqual([watcher]);
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { source: ['aws.cloudwatch'], detail: { alarmName: [{ prefix: clusterAlarmPrefix(NAME) }] } },
    });
  });

  test('rotation schedule to the rotation handler; sweep to the watcher and the migrator', () => {
    expect(targetsOf((p) => p.Name === `${NAME}-rotation`).map((x: Json) => x.Arn)).toEqual([arnOf('rotation-handler')]);
    expect(targetsOf((p) => p.Name === `${NAME}-sweep`).map((x: Json) => x.Arn))
      .toEqual([arnOf('cluster-health-watcher'), arnOf('job-migrator')]);
  });

  test('norris\'s own events, on the deployment\'s bus, go to the migrator', () => {
    const bus = logicalId(template, 'AWS::Events::EventBus', 'Bus');
    template.hasResourceProperties('AWS::Events::EventBus', { Name: `${NAME}-events` });
    const t = targetsOf((p) => JSON.stringify(p.EventPattern?.source) === '["norris"]' && JSON.stringify(p.EventBusName) === JSON.stringify(ref(bus)));
    expect(t.map((x: Json) => x.Arn)).toEqual([arnOf('job-migrator')]);
  });

  test('every target of every rule has a retry policy and an SQS dead-letter queue', () => {
    const queues = new Set(resources(template, 'AWS::SQS::Queue').map(([id]) => id));
    const all = rules().flatMap(([, r]) => r.Properties.Targets);
    expect(all.length).toBe(8);
    for (const t of all) {
      expect(t.RetryPolicy).toEqual({ MaximumRetryAttempts: expect.any(Number), MaximumEventAgeInSeconds: expect.any(Number) });
      const dlq = t.DeadLetterConfig.Arn['Fn::GetAtt'];
      expect(queues.has(dlq[0])).toBe(true);
      expect(dlq[1]).toBe('Arn');
    }
  });

  test('dead-letter queues: KMS-encrypted, TLS only, EventBridge may send only from this stack\'s rules', () => {
    for (const [, q] of resources(template, 'AWS::SQS::Queue')) expect(q.Properties.KmsMasterKeyId).toBeDefined();
    for (const [, p] of resources(template, 'AWS::SQS::QueuePolicy')) {
      const st = p.Properties.PolicyDocument.Statement as Json[];
      expect(st).toContainEqual(expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }));
      for (const s of st.filter((x) => x.Principal?.Service === 'events.amazonaws.com')) {
        expect(s.Action).toBe('sqs:SendMessage');
        expect(s.Condition.ArnEquals['aws:SourceArn']).toBeDefined();
      }
    }
  });
});

describe('IAM least privilege', () => {
  const emrServiceRole = () => logicalId(template, 'AWS::IAM::Role', 'EmrServiceRole');
  const emrInstanceRole = () => logicalId(template, 'AWS::IAM::Role', 'EmrInstanceRole');

  test('iam:PassRole only for the two EMR roles, each to its own service', () => {
    const passRole = statements.filter((s) => s.Action.some((a) => a === 'iam:PassRole' || a === 'iam:*' || a === '*'));
    expect(passRole.length).toBeGreaterThan(0);
    for (const s of passRole) {
      expect(s.Action).toEqual(['iam:PassRole']);
      expect(s.Resource).toHaveLength(1);
      const [resource] = s.Resource;
      if (JSON.stringify(resource) === JSON.stringify(getAtt(emrServiceRole(), 'Arn'))) {
        expect(s.Condition).toEqual({ StringEquals: { 'iam:PassedToService': 'elasticmapreduce.amazonaws.com' } });
      } else {
        expect(resource).toEqual(getAtt(emrInstanceRole(), 'Arn'));
        expect(s.Condition).toEqual({ StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } });
      }
    }
    // The launching functions may pass both; the scheduler and the migrator neither.
    for (const fn of ['cluster-health-watcher', 'rotation-handler']) {
      expect(statementsOf(fn).filter((s) => s.Action.includes('iam:PassRole')).map((s) => s.Resource[0]))
        .toEqual([getAtt(emrServiceRole(), 'Arn'), getAtt(emrInstanceRole(), 'Arn')]);
    }
    for (const fn of ['extraction-scheduler', 'job-migrator']) {
      expect(statementsOf(fn).filter((s) => s.Action.includes('iam:PassRole'))).toEqual([]);
    }
  });

  test('EMR termination and changes only on clusters tagged with this deployment', () => {
    const mutating = ['elasticmapreduce:TerminateJobFlows', 'elasticmapreduce:ModifyInstanceFleet', 'elasticmapreduce:DescribeCluster'];
    const withThem = statements.filter((s) => s.Action.some((a) => mutating.includes(a) || a === 'elasticmapreduce:*'));
    expect(withThem.length).toBe(2);
    for (const s of withThem) {
      expect(s.Condition).toEqual({ StringEquals: { [`aws:ResourceTag/${DEPLOYMENT_TAG}`]: NAME } });
      expect(JSON.stringify(s.Resource)).toContain(':cluster/*');
    }
  });

  test('clusters can only be launched carrying this deployment\'s tag', () => {
    const launch = statements.filter((s) => s.Action.includes('elasticmapreduce:RunJobFlow') || s.Action.includes('elasticmapreduce:AddTags'));
    expect(launch.length).toBe(4);
    for (const s of launch) expect(s.Condition).toEqual({ StringEquals: { [`aws:RequestTag/${DEPLOYMENT_TAG}`]: NAME } });
  });

  test('no wildcard action, and Resource "*" only where the action has no resource type', () => {
    for (const s of statements) {
      for (const a of s.Action) expect(a).not.toMatch(/\*/);
    }
    const star = statements.filter((s) => s.Resource.includes('*'));
    const allowed: Record<string, (s: Statement) => boolean> = {
      // Lambda VPC networking: Describe calls work only on Resource *.
      'ec2:DescribeNetworkInterfaces,ec2:DescribeSubnets': () => true,
      'elasticmapreduce:ListClusters': () => true,
      'elasticmapreduce:RunJobFlow': (s) => s.Condition?.StringEquals?.[`aws:RequestTag/${DEPLOYMENT_TAG}`] === NAME,
      'cloudwatch:PutMetricData': (s) => s.Condition?.StringEquals?.['cloudwatch:namespace'] === 'norris',
    };
    for (const s of star) {
      const key = [...s.Action].sort().join(',');
      expect(Object.keys(allowed)).toContain(key);
      expect(allowed[key](s)).toBe(true);
    }
  });

  test('DynamoDB actions only on this deployment\'s tables and their named indexes', () => {
    const tableIds = new Set(resources(template, 'AWS::DynamoDB::Table').map(([id]) => id));
    const dynamo = statements.filter((s) => s.Action.some((a) => a.startsWith('dynamodb:')));
    expect(dynamo.length).toBeGreaterThan(0);
    for (const s of dynamo) {
      for (const r of s.Resource) {
        const table = r['Fn::GetAtt']?.[0] ?? r['Fn::Join']?.[1]?.[0]?.['Fn::GetAtt']?.[0];
        expect(tableIds.has(table)).toBe(true);
        if (r['Fn::Join']) expect(r['Fn::Join'][1][1]).toMatch(/^\/index\/(due|active)$/);
      }
    }
  });

  test('the scheduler reaches its tables and nothing of EMR', () => {
    const actions = statementsOf('extraction-scheduler').flatMap((s) => s.Action);
    expect(actions.filter((a) => a.startsWith('elasticmapreduce:') || a.startsWith('iam:'))).toEqual([]);
    expect(actions).toContain('dynamodb:Query');
  });

  test('EMR node role: secrets only under the norris/ prefix, results table only', () => {
    const secrets = statements.filter((s) => s.Action.some((a) => a.startsWith('secretsmanager:')));
    expect(secrets).toHaveLength(1);
    expect(JSON.stringify(secrets[0].Resource)).toMatch(/:secret:norris\/\*"/);
    // The functions never read secrets.
    for (const fn of FUNCTIONS) expect(statementsOf(fn).filter((s) => s.Action.some((a) => a.startsWith('secretsmanager:')))).toEqual([]);
  });

  test('the EMR service role trusts EMR for this account\'s clusters only', () => {
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [Match.objectLike({
          Principal: { Service: 'elasticmapreduce.amazonaws.com' },
          Condition: { StringEquals: { 'aws:SourceAccount': Match.anyValue() }, ArnLike: { 'aws:SourceArn': Match.anyValue() } },
        })],
      },
    });
    template.hasResourceProperties('AWS::IAM::InstanceProfile', { Roles: [ref(emrInstanceRole())] });
  });
});

describe('network', () => {
  test('Livy\'s port is open only to the control-plane functions\' security group', () => {
    const livySg = logicalId(template, 'AWS::EC2::SecurityGroup', 'LivySg');
    const controlSg = logicalId(template, 'AWS::EC2::SecurityGroup', 'ControlPlaneSg');
    const ingress = resources(template, 'AWS::EC2::SecurityGroupIngress').map(([, r]) => r.Properties);
    const inline = resources(template, 'AWS::EC2::SecurityGroup').flatMap(([, r]) => r.Properties.SecurityGroupIngress ?? []);
    const all = [...ingress, ...inline];
    const livy = all.filter((r: Json) => r.FromPort <= LIVY_PORT && r.ToPort >= LIVY_PORT || r.IpProtocol === '-1');
    expect(livy).toEqual([expect.objectContaining({
      GroupId: getAtt(livySg, 'GroupId'),
      IpProtocol: 'tcp', FromPort: LIVY_PORT, ToPort: LIVY_PORT,
      SourceSecurityGroupId: getAtt(controlSg, 'GroupId'),
    })]);
    // No ingress from an address range anywhere in the stack.
    for (const r of all) {
      expect(r.CidrIp).toBeUndefined();
      expect(r.CidrIpv6).toBeUndefined();
    }
  });

  test('the control plane reaches out only on 443 and to Livy', () => {
    const controlSg = logicalId(template, 'AWS::EC2::SecurityGroup', 'ControlPlaneSg');
    const inline = template.toJSON().Resources[controlSg].Properties.SecurityGroupEgress;
    expect(inline).toEqual([expect.objectContaining({ CidrIp: '0.0.0.0/0', IpProtocol: 'tcp', FromPort: 443, ToPort: 443 })]);
    const egress = resources(template, 'AWS::EC2::SecurityGroupEgress').map(([, r]) => r.Properties);
    expect(egress).toEqual([expect.objectContaining({
      GroupId: getAtt(controlSg, 'GroupId'), FromPort: LIVY_PORT, ToPort: LIVY_PORT,
      DestinationSecurityGroupId: getAtt(logicalId(template, 'AWS::EC2::SecurityGroup', 'LivySg'), 'GroupId'),
    })]);
  });

  test('the created VPC: private subnets for functions and clusters, gateway endpoints, flow logs', () => {
    template.resourceCountIs('AWS::EC2::VPC', 1);
    template.resourceCountIs('AWS::EC2::NatGateway', 1);
    template.resourceCountIs('AWS::EC2::FlowLog', 1);
    template.resourceCountIs('AWS::EC2::VPCEndpoint', 2);
    for (const [, s] of resources(template, 'AWS::EC2::Subnet')) expect(s.Properties.MapPublicIpOnLaunch).toBe(false);
  });
});

describe('buckets, encryption, EMR security configuration', () => {
  test('every bucket blocks public access, is encrypted and versioned, and denies non-TLS requests', () => {
    const buckets = resources(template, 'AWS::S3::Bucket');
    expect(buckets).toHaveLength(3);
    for (const [id, b] of buckets) {
      expect(b.Properties.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true,
      });
      expect(b.Properties.BucketEncryption.ServerSideEncryptionConfiguration).toHaveLength(1);
      expect(b.Properties.VersioningConfiguration).toEqual({ Status: 'Enabled' });
      template.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: ref(id),
        PolicyDocument: {
          Statement: Match.arrayWith([Match.objectLike({
            Effect: 'Deny', Principal: { AWS: '*' }, Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          })]),
        },
      });
    }
  });

  test('the lake bucket is encrypted with the deployment key and logs its access', () => {
    const lake = logicalId(template, 'AWS::S3::Bucket', 'LakeBucket');
    const key = logicalId(template, 'AWS::KMS::Key', 'Key');
    expect(template.toJSON().Resources[lake].Properties).toMatchObject({
      BucketEncryption: { ServerSideEncryptionConfiguration: [{
        ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: getAtt(key, 'Arn') },
      }] },
      LoggingConfiguration: { DestinationBucketName: ref(logicalId(template, 'AWS::S3::Bucket', 'LogBucket')) },
    });
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
  });

  test('EMR security configuration: at-rest encryption with the key, IMDSv2', () => {
    const [[, sc]] = resources(template, 'AWS::EMR::SecurityConfiguration');
    const conf = sc.Properties.SecurityConfiguration;
    expect(sc.Properties.Name).toBe(`${NAME}-emr`);
    expect(conf.EncryptionConfiguration.EnableAtRestEncryption).toBe(true);
    expect(conf.EncryptionConfiguration.AtRestEncryptionConfiguration.LocalDiskEncryptionConfiguration.EnableEbsEncryption).toBe(true);
    expect(conf.EncryptionConfiguration.AtRestEncryptionConfiguration.S3EncryptionConfiguration.EncryptionMode).toBe('SSE-KMS');
    expect(conf.InstanceMetadataServiceConfiguration.MinimumInstanceMetadataServiceVersion).toBe(2);
  });

  test('the SNS topic is encrypted and only this deployment\'s alarms may publish', () => {
    template.hasResourceProperties('AWS::SNS::Topic', { TopicName: `${NAME}-alarms`, KmsMasterKeyId: Match.anyValue() });
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({
        Principal: { Service: 'cloudwatch.amazonaws.com' }, Action: 'sns:Publish',
        Condition: { ArnLike: { 'aws:SourceArn': Match.anyValue() } },
      })]) },
    });
  });

  test('everything carries the deployment tag', () => {
    for (const type of ['AWS::DynamoDB::Table', 'AWS::Lambda::Function', 'AWS::SQS::Queue', 'AWS::S3::Bucket', 'AWS::IAM::Role']) {
      for (const [, r] of resources(template, type)) {
        expect(r.Properties.Tags).toContainEqual({ Key: DEPLOYMENT_TAG, Value: NAME });
      }
    }
  });
});

describe('group specs (NORRIS_SPEC_URI, crates/s3)', () => {
  const artifacts = () => logicalId(template, 'AWS::S3::Bucket', 'ArtifactsBucket');
  const specsArn = () => ({ 'Fn::Join': ['', [getAtt(artifacts(), 'Arn'), '/specs/*']] });

  test('every function is told where specs go: specs/ in the artifacts bucket', () => {
    for (const fn of FUNCTIONS) {
      expect(template.toJSON().Resources[fnId(fn)].Properties.Environment.Variables.NORRIS_SPEC_URI)
        .toEqual({ 'Fn::Join': ['', ['s3://', ref(artifacts()), '/specs/']] });
    }
  });

  test('every function may put objects under specs/ only, and no other S3 action', () => {
    for (const fn of FUNCTIONS) {
      const s3 = statementsOf(fn).filter((s) => s.Action.some((a) => a.startsWith('s3:')));
      expect(s3).toEqual([expect.objectContaining({ Effect: 'Allow', Action: ['s3:PutObject'], Resource: [specsArn()] })]);
      expect(s3[0].Condition).toBeUndefined();
    }
  });

  test('every function may have S3 generate data keys with the bucket\'s key', () => {
    const key = logicalId(template, 'AWS::KMS::Key', 'Key');
    expect(template.toJSON().Resources[artifacts()].Properties.BucketEncryption.ServerSideEncryptionConfiguration)
      .toEqual([expect.objectContaining({ ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: getAtt(key, 'Arn') } })]);
    for (const fn of FUNCTIONS) {
      const kms = statementsOf(fn).filter((s) => s.Action.includes('kms:GenerateDataKey'));
      expect(kms.map((s) => s.Resource)).toEqual([[getAtt(key, 'Arn')]]);
    }
  });

  test('specs expire after two weeks, their old versions and delete markers too', () => {
    const rules = template.toJSON().Resources[artifacts()].Properties.LifecycleConfiguration.Rules as Json[];
    expect(rules).toContainEqual({
      Id: 'ExpireGroupSpecs', Prefix: 'specs/', Status: 'Enabled',
      ExpirationInDays: SPEC_RETENTION_DAYS, NoncurrentVersionExpiration: { NoncurrentDays: 1 },
    });
    expect(SPEC_RETENTION_DAYS).toBe(14);
    expect(rules).toContainEqual({ Id: 'RemoveGroupSpecDeleteMarkers', Prefix: 'specs/', Status: 'Enabled', ExpiredObjectDeleteMarker: true });
    // The rest of the bucket keeps its rule: no expiry of current objects outside specs/.
    for (const r of rules.filter((x) => x.Prefix !== 'specs/')) expect(r.ExpirationInDays).toBeUndefined();
  });
});

describe('alarms and dashboard', () => {
  const alarms = () => resources(template, 'AWS::CloudWatch::Alarm').map(([, r]) => r.Properties);
  const byName = (n: string) => alarms().find((a) => a.AlarmName === n);

  test('failed runs: RunsFailed in namespace norris for this deployment', () => {
    expect(byName(`${NAME}-runs-failed`)).toMatchObject({
      Namespace: 'norris', MetricName: 'RunsFailed', Dimensions: [{ Name: 'Deployment', Value: NAME }], Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
    });
  });

  test('watermark lag beyond the SLO: the worst job of the deployment, and per-job overrides', () => {
    const lag = byName(`${NAME}-watermark-lag`);
    expect(lag.Threshold).toBe(3600);
    expect(lag.Metrics[0].Expression).toBe(`SELECT MAX(WatermarkLag) FROM SCHEMA("norris", Deployment, JobId) WHERE Deployment = '${NAME}'`);
    expect(byName(`${NAME}-watermark-lag-shop.orders`)).toMatchObject({
      MetricName: 'WatermarkLag', Threshold: 900,
      Dimensions: expect.arrayContaining([{ Name: 'Deployment', Value: NAME }, { Name: 'JobId', Value: 'shop.orders' }]),
    });
  });

  test('a Lambda-errors and a DLQ-not-empty alarm per function; every alarm notifies the topic', () => {
    const topic = logicalId(template, 'AWS::SNS::Topic', 'AlarmTopic');
    for (const fn of FUNCTIONS) {
      expect(byName(`${NAME}-${fn}-errors`)).toMatchObject({ Namespace: 'AWS/Lambda', MetricName: 'Errors' });
      expect(byName(`${NAME}-${fn}-dlq-not-empty`)).toMatchObject({ Namespace: 'AWS/SQS', MetricName: 'ApproximateNumberOfMessagesVisible' });
    }
    for (const a of alarms()) {
      expect(a.AlarmActions).toEqual([ref(topic)]);
      expect(a.AlarmName.startsWith(`${NAME}-`)).toBe(true);
      // The watcher reacts to cluster alarms only; the stack's own alarms are not routed to it.
      expect(a.AlarmName.startsWith(clusterAlarmPrefix(NAME))).toBe(false);
    }
  });

  test('a dashboard', () => {
    template.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardName: NAME });
  });
});
