// One norris deployment: its DynamoDB tables, the four control-plane Lambdas and their EventBridge
// wiring, dead-letter queues, alarms and dashboard, and the EMR side (roles, instance profile,
// security groups, security configuration, buckets). Several deployments (one per country or
// environment) live side by side in one account: every name, tag and permission is scoped to the
// deployment's name.
import * as path from 'path';
import * as fs from 'fs';
import { Aws, CfnOutput, CfnResource, Duration, RemovalPolicy, Stack, StackProps, Tags, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as emr from 'aws-cdk-lib/aws-emr';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct, IConstruct } from 'constructs';
import { Deployment } from './config';
import { loadTables, TableDef } from './tables';

/** The tag every norris-owned resource carries; EMR permissions are conditioned on it. */
export const DEPLOYMENT_TAG = 'norris:deployment';
/** Livy's REST port on the EMR primary node. */
export const LIVY_PORT = 8998;
/** The CloudWatch namespace of norris's EMF metrics (crates/control/src/metrics.rs). */
export const METRICS_NAMESPACE = 'norris';

/** Where group specs are written in the artifacts bucket (`NORRIS_SPEC_URI`, crates/s3). */
export const SPEC_PREFIX = 'specs/';
/** How long a group spec is kept: it is read once, at submission; two weeks leave time to investigate. */
export const SPEC_RETENTION_DAYS = 14;

/** The four control-plane functions: cargo package/binary name and their role in the stack. */
export const FUNCTIONS = ['extraction-scheduler', 'cluster-health-watcher', 'rotation-handler', 'job-migrator'] as const;
export type FunctionName = (typeof FUNCTIONS)[number];

/** Where the functions' code comes from. */
export type CodeSource =
  /** `target/lambda/<function>/bootstrap.zip`, built by `make package` (infra/package.sh). */
  | { readonly kind: 'package'; readonly targetDir: string }
  /** infra/placeholder: a bootstrap that fails loudly. For tests and offline gates only. */
  | { readonly kind: 'placeholder' };

export interface NorrisStackProps extends StackProps {
  readonly deployment: Deployment;
  readonly code: CodeSource;
  /** Apply the cdk-nag acknowledgements (default true; tests turn them off to prove each is needed). */
  readonly acknowledgeNagFindings?: boolean;
}

const REPO_ROOT = path.join(__dirname, '..', '..');
export const DEFAULT_TARGET_DIR = path.join(REPO_ROOT, 'target', 'lambda');
const PLACEHOLDER_DIR = path.join(__dirname, '..', 'placeholder');

/** A cdk-nag finding acknowledged on a construct, with the reason it is acceptable. */
export interface NagAcknowledgement {
  readonly construct: IConstruct;
  readonly id: string;
  reason: string;
}

interface FunctionSpec {
  readonly fn: FunctionName;
  readonly description: string;
  readonly memoryMb: number;
  readonly timeout: Duration;
  readonly concurrency: number;
  /** Lambda's own retries of a failed asynchronous invocation (0-2). */
  readonly asyncRetries: number;
  readonly maxEventAge: Duration;
}

export class NorrisStack extends Stack {
  readonly deployment: Deployment;
  readonly key: kms.Key;
  readonly tables: Record<string, dynamodb.Table> = {};
  readonly functions = {} as Record<FunctionName, lambda.Function>;
  readonly deadLetterQueues = {} as Record<FunctionName, sqs.Queue>;
  readonly controlPlaneSecurityGroup: ec2.SecurityGroup;
  readonly livySecurityGroup: ec2.SecurityGroup;
  readonly emrServiceRole: iam.Role;
  readonly emrInstanceRole: iam.Role;
  /** Every cdk-nag finding this stack acknowledges, with its reason. */
  readonly nagAcknowledgements: NagAcknowledgement[] = [];

  constructor(scope: Construct, id: string, props: NorrisStackProps) {
    super(scope, id, props);
    const d = props.deployment;
    this.deployment = d;
    const name = d.name;
    Tags.of(this).add(DEPLOYMENT_TAG, name);
    Tags.of(this).add('norris:component', 'control-plane');

    // ---------------------------------------------------------------- encryption
    // One customer-managed key per deployment: tables, queues, topic, log groups, Lambda
    // environments, the lake and artifacts buckets, EMR local disks.
    this.key = new kms.Key(this, 'Key', {
      description: `norris ${name}: tables, queues, logs, lake, EMR local disks`,
      enableKeyRotation: true,
      alias: `alias/${name}`,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const key = this.key;
    key.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'CloudWatchLogsEncryptsThisDeploymentsLogGroups',
      principals: [new iam.ServicePrincipal(`logs.${Aws.REGION}.amazonaws.com`)],
      actions: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncryptFrom', 'kms:ReEncryptTo', 'kms:GenerateDataKey', 'kms:DescribeKey'],
      resources: ['*'],
      conditions: {
        ArnLike: { 'kms:EncryptionContext:aws:logs:arn': `arn:${Aws.PARTITION}:logs:${Aws.REGION}:${Aws.ACCOUNT_ID}:log-group:*` },
      },
    }));
    key.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'EventBridgeWritesEncryptedDeadLetterQueues',
      principals: [new iam.ServicePrincipal('events.amazonaws.com')],
      actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
      resources: ['*'],
      conditions: { ArnLike: { 'aws:SourceArn': `arn:${Aws.PARTITION}:events:${Aws.REGION}:${Aws.ACCOUNT_ID}:rule/*` } },
    }));
    key.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'CloudWatchAlarmsPublishToTheEncryptedTopic',
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
      resources: ['*'],
    }));

    // ---------------------------------------------------------------- tables (from tables.json)
    const tableDefs = loadTables();
    for (const t of tableDefs) this.tables[t.key] = this.table(t);

    // ---------------------------------------------------------------- buckets
    const logBucket = new s3.Bucket(this, 'LogBucket', {
      // S3 server access logs can only be delivered to an SSE-S3 bucket.
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ expiration: Duration.days(d.logRetentionDays), noncurrentVersionExpiration: Duration.days(30) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    skipCheckov(logBucket, 'CKV_AWS_18', 'This is the access-log bucket: the lake and artifacts buckets log into it; logging it into itself would loop.');
    const lakeBucket = new s3.Bucket(this, 'LakeBucket', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: key,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: logBucket,
      serverAccessLogsPrefix: 's3-access/lake/',
      lifecycleRules: [{ noncurrentVersionExpiration: Duration.days(30), abortIncompleteMultipartUploadAfter: Duration.days(7) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const artifactsBucket = new s3.Bucket(this, 'ArtifactsBucket', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: key,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: logBucket,
      serverAccessLogsPrefix: 's3-access/artifacts/',
      lifecycleRules: [
        { noncurrentVersionExpiration: Duration.days(90) },
        // Group specs (one object per group attempt, read once by its Spark application). The
        // bucket is versioned, so expiring a spec leaves a noncurrent version (dropped a day
        // later: the shorter of the overlapping rules wins) and then a lone delete marker, which
        // the next rule removes so specs/ does not fill up with markers.
        {
          id: 'ExpireGroupSpecs',
          prefix: SPEC_PREFIX,
          expiration: Duration.days(SPEC_RETENTION_DAYS),
          noncurrentVersionExpiration: Duration.days(1),
        },
        { id: 'RemoveGroupSpecDeleteMarkers', prefix: SPEC_PREFIX, expiredObjectDeleteMarker: true },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // ---------------------------------------------------------------- network
    const { vpc, subnets } = this.network(d, logBucket);
    this.controlPlaneSecurityGroup = new ec2.SecurityGroup(this, 'ControlPlaneSg', {
      vpc,
      description: `norris ${name} control-plane Lambdas: HTTPS to AWS APIs, Livy on the EMR primary`,
      allowAllOutbound: false,
    });
    this.controlPlaneSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to the AWS APIs (DynamoDB, EMR, EventBridge)');
    const emrPrimarySg = new ec2.SecurityGroup(this, 'EmrPrimarySg', {
      vpc,
      description: `norris ${name} EMR-managed security group of the primary node (EMR adds its rules)`,
      allowAllOutbound: true,
    });
    const emrCoreSg = new ec2.SecurityGroup(this, 'EmrCoreSg', {
      vpc,
      description: `norris ${name} EMR-managed security group of core and task nodes (EMR adds its rules)`,
      allowAllOutbound: true,
    });
    const emrServiceAccessSg = new ec2.SecurityGroup(this, 'EmrServiceAccessSg', {
      vpc,
      description: `norris ${name} EMR service access security group (private subnets; EMR adds its rules)`,
      allowAllOutbound: false,
    });
    this.livySecurityGroup = new ec2.SecurityGroup(this, 'LivySg', {
      vpc,
      description: `norris ${name} Livy (${LIVY_PORT}) on the EMR primary, reachable only from the control plane`,
      allowAllOutbound: false,
    });
    this.livySecurityGroup.addIngressRule(
      this.controlPlaneSecurityGroup, ec2.Port.tcp(LIVY_PORT), 'Livy REST from the norris control-plane Lambdas only');
    this.controlPlaneSecurityGroup.addEgressRule(
      this.livySecurityGroup, ec2.Port.tcp(LIVY_PORT), 'Livy REST on the EMR primary node');
    // EMR's v2 managed service policy acts only on resources carrying this tag.
    for (const sg of [emrPrimarySg, emrCoreSg, emrServiceAccessSg, this.livySecurityGroup]) {
      Tags.of(sg).add('for-use-with-amazon-emr-managed-policies', 'true');
    }

    // ---------------------------------------------------------------- EMR roles
    const clusterArn = `arn:${Aws.PARTITION}:elasticmapreduce:${Aws.REGION}:${Aws.ACCOUNT_ID}:cluster/*`;
    this.emrServiceRole = new iam.Role(this, 'EmrServiceRole', {
      description: `norris ${name}: EMR service role for the clusters norris launches`,
      assumedBy: new iam.ServicePrincipal('elasticmapreduce.amazonaws.com', {
        conditions: {
          StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
          ArnLike: { 'aws:SourceArn': clusterArn },
        },
      }),
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonEMRServicePolicy_v2')],
    });
    this.acknowledge(this.emrServiceRole, 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonEMRServicePolicy_v2]',
      'AWS-maintained EMR service policy v2: it acts only on resources tagged for-use-with-amazon-emr-managed-policies=true, and keeps up with what EMR needs to launch fleets; a hand-written copy would drift.');
    this.emrInstanceRole = new iam.Role(this, 'EmrInstanceRole', {
      description: `norris ${name}: EC2 role of EMR nodes (Spark jobs: lake, artifacts, logs, results, JDBC secrets)`,
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
    });
    const instanceProfile = new iam.InstanceProfile(this, 'EmrInstanceProfile', { role: this.emrInstanceRole });
    this.emrServiceRole.addToPolicy(new iam.PolicyStatement({
      sid: 'PassTheNodeRoleToEc2',
      actions: ['iam:PassRole'],
      resources: [this.emrInstanceRole.roleArn],
      conditions: { StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } },
    }));
    this.emrServiceRole.addToPolicy(new iam.PolicyStatement({
      sid: 'EncryptNodeVolumes',
      actions: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncryptFrom', 'kms:ReEncryptTo', 'kms:GenerateDataKey',
        'kms:GenerateDataKeyWithoutPlaintext', 'kms:DescribeKey'],
      resources: [key.keyArn],
    }));
    this.emrServiceRole.addToPolicy(new iam.PolicyStatement({
      sid: 'GrantEbsTheKey',
      actions: ['kms:CreateGrant'],
      resources: [key.keyArn],
      conditions: { Bool: { 'kms:GrantIsForAWSResource': 'true' } },
    }));

    const resultsTable = this.tables.results;
    const instancePolicy = new iam.Policy(this, 'EmrInstancePolicy', {
      statements: [
        new iam.PolicyStatement({
          sid: 'LakeReadWrite',
          actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
          resources: [lakeBucket.arnForObjects('*')],
        }),
        new iam.PolicyStatement({
          sid: 'ArtifactsRead',
          actions: ['s3:GetObject'],
          resources: [artifactsBucket.arnForObjects('*')],
        }),
        new iam.PolicyStatement({
          sid: 'ListOwnBuckets',
          actions: ['s3:ListBucket', 's3:GetBucketLocation', 's3:ListBucketMultipartUploads'],
          resources: [lakeBucket.bucketArn, artifactsBucket.bucketArn, logBucket.bucketArn],
        }),
        new iam.PolicyStatement({
          sid: 'WriteClusterLogs',
          actions: ['s3:PutObject'],
          resources: [logBucket.arnForObjects('emr/*')],
        }),
        new iam.PolicyStatement({
          sid: 'UseTheDeploymentKey',
          actions: ['kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey', 'kms:DescribeKey'],
          resources: [key.keyArn],
        }),
        new iam.PolicyStatement({
          sid: 'ReadJdbcCredentials',
          actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
          resources: [`arn:${Aws.PARTITION}:secretsmanager:${Aws.REGION}:${Aws.ACCOUNT_ID}:secret:${d.secretNamePrefix}*`],
        }),
        new iam.PolicyStatement({
          sid: 'WriteAttemptResults',
          actions: ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:DescribeTable'],
          resources: [resultsTable.tableArn],
        }),
        new iam.PolicyStatement({
          sid: 'PublishSparkMetrics',
          actions: ['cloudwatch:PutMetricData'],
          resources: ['*'],
          conditions: { StringEquals: { 'cloudwatch:namespace': METRICS_NAMESPACE } },
        }),
      ],
    });
    this.emrInstanceRole.attachInlinePolicy(instancePolicy);
    for (const [finding, reason] of [
      [`Resource::<${this.getLogicalId(lakeBucket.node.defaultChild as s3.CfnBucket)}.Arn>/*`,
        'Spark writes any object of the lake (one prefix per job, chosen by the job definitions).'],
      [`Resource::<${this.getLogicalId(artifactsBucket.node.defaultChild as s3.CfnBucket)}.Arn>/*`,
        'Spark reads the job code (livy-jobs) uploaded anywhere in the deployment\'s artifacts bucket.'],
      [`Resource::<${this.getLogicalId(logBucket.node.defaultChild as s3.CfnBucket)}.Arn>/emr/*`,
        'EMR writes each cluster\'s logs under emr/<cluster id>/, ids unknown in advance.'],
      [`Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:${d.secretNamePrefix}*`,
        `JDBC credentials are referenced by ARN in job definitions; the node role reads only secrets named ${d.secretNamePrefix}..., never others.`],
      ['Resource::*', 'cloudwatch:PutMetricData has no resource type; the statement is narrowed by the cloudwatch:namespace condition to norris.'],
    ] as const) {
      this.acknowledge(instancePolicy, `AwsSolutions-IAM5[${finding}]`, reason);
    }

    // EMR security configuration: at-rest encryption (S3 via EMRFS with the deployment key, local
    // disks and EBS volumes with the same key), IMDSv2 only. In-transit encryption needs PEM
    // certificates in S3 (emrTlsCertificatesS3Uri), which cannot be made offline.
    const securityConfiguration = new emr.CfnSecurityConfiguration(this, 'EmrSecurityConfiguration', {
      name: `${name}-emr`,
      securityConfiguration: {
        EncryptionConfiguration: {
          EnableAtRestEncryption: true,
          AtRestEncryptionConfiguration: {
            S3EncryptionConfiguration: { EncryptionMode: 'SSE-KMS', AwsKmsKey: key.keyArn },
            LocalDiskEncryptionConfiguration: { EncryptionKeyProviderType: 'AwsKms', AwsKmsKey: key.keyArn, EnableEbsEncryption: true },
          },
          EnableInTransitEncryption: d.emrTlsCertificatesS3Uri !== undefined,
          ...(d.emrTlsCertificatesS3Uri === undefined ? {} : {
            InTransitEncryptionConfiguration: {
              TLSCertificateConfiguration: { CertificateProviderType: 'PEM', S3Object: d.emrTlsCertificatesS3Uri },
            },
          }),
        },
        InstanceMetadataServiceConfiguration: { MinimumInstanceMetadataServiceVersion: 2, HttpPutResponseHopLimit: 1 },
      },
    });

    // ---------------------------------------------------------------- events bus (norris's own events)
    const bus = new events.EventBus(this, 'Bus', { eventBusName: `${name}-events` });

    // ---------------------------------------------------------------- functions
    const rc = d.reservedConcurrency;
    const specs: FunctionSpec[] = [
      { fn: 'extraction-scheduler', description: 'one scheduler tick: cut due windows, submit, follow, commit runs',
        memoryMb: 512, timeout: Duration.minutes(4), concurrency: rc.scheduler, asyncRetries: 0, maxEventAge: Duration.minutes(5) },
      { fn: 'cluster-health-watcher', description: 'cluster health: EMR/EC2 spot events, alarms, sweep; relaunch dead clusters once',
        memoryMb: 256, timeout: Duration.minutes(2), concurrency: rc.watcher, asyncRetries: 2, maxEventAge: Duration.hours(1) },
      { fn: 'rotation-handler', description: 'make-before-break rotation of old clusters, idle scale-down',
        memoryMb: 256, timeout: Duration.minutes(5), concurrency: rc.rotation, asyncRetries: 1, maxEventAge: Duration.minutes(30) },
      { fn: 'job-migrator', description: 'move unfinished runs off lost or draining clusters',
        memoryMb: 256, timeout: Duration.minutes(3), concurrency: rc.migrator, asyncRetries: 2, maxEventAge: Duration.hours(1) },
    ];
    const emrEnvironment: Record<string, string> = {
      NORRIS_EMR_SERVICE_ROLE: this.emrServiceRole.roleName,
      NORRIS_EMR_INSTANCE_PROFILE: instanceProfile.instanceProfileName,
      NORRIS_EMR_SECURITY_CONFIGURATION: securityConfiguration.ref,
      NORRIS_EMR_SUBNET_IDS: subnets.subnetIds.join(','),
      NORRIS_EMR_PRIMARY_SECURITY_GROUP: emrPrimarySg.securityGroupId,
      NORRIS_EMR_CORE_SECURITY_GROUP: emrCoreSg.securityGroupId,
      NORRIS_EMR_SERVICE_ACCESS_SECURITY_GROUP: emrServiceAccessSg.securityGroupId,
      NORRIS_EMR_ADDITIONAL_PRIMARY_SECURITY_GROUP: this.livySecurityGroup.securityGroupId,
      NORRIS_EMR_LOG_URI: `s3://${logBucket.bucketName}/emr/`,
    };
    for (const spec of specs) {
      const lifecycle = spec.fn === 'cluster-health-watcher' || spec.fn === 'rotation-handler';
      this.functions[spec.fn] = this.controlPlaneFunction(spec, props.code, vpc, subnets, {
        NORRIS_TABLE_PREFIX: name,
        NORRIS_DEPLOYMENT: name,
        NORRIS_EVENT_BUS: bus.eventBusName,
        NORRIS_LAKE_BUCKET: lakeBucket.bucketName,
        NORRIS_SPEC_URI: `s3://${artifactsBucket.bucketName}/${SPEC_PREFIX}`,
        ...(lifecycle ? emrEnvironment : {}),
      });
    }
    const f = this.functions;

    // DynamoDB: only norris's tables and their indexes, named one by one.
    const read = ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query', 'dynamodb:Scan', 'dynamodb:DescribeTable'];
    const write = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:ConditionCheckItem', 'dynamodb:BatchWriteItem'];
    const tableResources = (keys: string[]) => keys.flatMap((k) => {
      const def = tableDefs.find((t) => t.key === k);
      if (!def) throw new Error(`tables.json has no table ${k}`);
      const arn = this.tables[k].tableArn;
      return [arn, ...def.indexes.map((ix) => `${arn}/index/${ix.name}`)];
    });
    const grantTables = (fn: lambda.Function, readKeys: string[], writeKeys: string[]) => {
      fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'ReadNorrisTables', actions: read, resources: tableResources([...new Set([...readKeys, ...writeKeys])]) }));
      if (writeKeys.length > 0) {
        fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'WriteNorrisTables', actions: write, resources: tableResources(writeKeys) }));
      }
    };
    // The scheduler writes the ledger and its norris_* annotations on job definitions.
    grantTables(f['extraction-scheduler'], ['pools', 'results'], ['jobs', 'ledger']);
    grantTables(f['cluster-health-watcher'], ['jobs', 'pools', 'results'], ['ledger']);
    grantTables(f['rotation-handler'], ['jobs', 'pools', 'results'], ['ledger']);
    grantTables(f['job-migrator'], ['jobs', 'pools', 'results'], ['ledger']);

    // Group specs: every function may write one (the scheduler when it submits a group, the
    // lifecycle functions when they move a group to another cluster); EMR's node role reads them
    // (ArtifactsRead). PutObject only, under specs/: nothing reads, lists or deletes them here.
    // The bucket is SSE-KMS with the deployment key (bucket key on): the kms:GenerateDataKey a
    // write needs is in UseTheDeploymentKey, which every function has.
    const specsArn = artifactsBucket.arnForObjects(`${SPEC_PREFIX}*`);
    for (const fn of FUNCTIONS) {
      f[fn].addToRolePolicy(new iam.PolicyStatement({ sid: 'WriteGroupSpecs', actions: ['s3:PutObject'], resources: [specsArn] }));
      this.acknowledge(f[fn].role!.node.findChild('DefaultPolicy'),
        `AwsSolutions-IAM5[Resource::<${this.getLogicalId(artifactsBucket.node.defaultChild as s3.CfnBucket)}.Arn>/${SPEC_PREFIX}*]`,
        'A group spec is one object per group attempt, named at run time; the functions may only put objects, and only under specs/ of this deployment\'s artifacts bucket.');
    }

    // Cluster lifecycle (watcher: relaunch; rotation: launch, drain, terminate, scale down).
    const tagCondition = (kind: 'RequestTag' | 'ResourceTag') => ({ StringEquals: { [`aws:${kind}/${DEPLOYMENT_TAG}`]: name } });
    for (const fn of [f['cluster-health-watcher'], f['rotation-handler']]) {
      fn.addToRolePolicy(new iam.PolicyStatement({
        sid: 'LaunchOnlyTaggedClusters',
        actions: ['elasticmapreduce:RunJobFlow'],
        resources: ['*'],
        conditions: tagCondition('RequestTag'),
      }));
      fn.addToRolePolicy(new iam.PolicyStatement({
        sid: 'TagOnLaunch',
        actions: ['elasticmapreduce:AddTags'],
        resources: [clusterArn],
        conditions: tagCondition('RequestTag'),
      }));
      fn.addToRolePolicy(new iam.PolicyStatement({
        sid: 'ManageOnlyThisDeploymentsClusters',
        actions: ['elasticmapreduce:DescribeCluster', 'elasticmapreduce:ListInstances', 'elasticmapreduce:ListInstanceFleets',
          'elasticmapreduce:ModifyInstanceFleet', 'elasticmapreduce:TerminateJobFlows'],
        resources: [clusterArn],
        conditions: tagCondition('ResourceTag'),
      }));
      fn.addToRolePolicy(new iam.PolicyStatement({
        sid: 'FindClusters',
        actions: ['elasticmapreduce:ListClusters'],
        resources: ['*'],
      }));
      fn.addToRolePolicy(new iam.PolicyStatement({
        sid: 'PassTheServiceRoleToEmr',
        actions: ['iam:PassRole'],
        resources: [this.emrServiceRole.roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'elasticmapreduce.amazonaws.com' } },
      }));
      fn.addToRolePolicy(new iam.PolicyStatement({
        sid: 'PassTheNodeRoleToEc2',
        actions: ['iam:PassRole'],
        resources: [this.emrInstanceRole.roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } },
      }));
      fn.addToRolePolicy(new iam.PolicyStatement({
        sid: 'PublishNorrisEvents',
        actions: ['events:PutEvents'],
        resources: [bus.eventBusArn],
      }));
      const policy = fn.role!.node.findChild('DefaultPolicy');
      this.acknowledge(policy, 'AwsSolutions-IAM5[Resource::*]',
        'elasticmapreduce:RunJobFlow and ListClusters have no resource type: RunJobFlow is narrowed by the aws:RequestTag condition (only clusters tagged norris:deployment=<this deployment>); ListClusters only lists.');
      this.acknowledge(policy, 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:elasticmapreduce:<AWS::Region>:<AWS::AccountId>:cluster/*]',
        'Cluster ids are created at run time; every statement on cluster/* carries an aws:RequestTag or aws:ResourceTag condition on norris:deployment=<this deployment>.');
    }
    f['job-migrator'].addToRolePolicy(new iam.PolicyStatement({
      sid: 'PublishNorrisEvents',
      actions: ['events:PutEvents'],
      resources: [bus.eventBusArn],
    }));

    // ---------------------------------------------------------------- EventBridge rules
    const target = (fn: FunctionName, retryAttempts: number, maxEventAge: Duration) =>
      new targets.LambdaFunction(f[fn], { deadLetterQueue: this.deadLetterQueues[fn], retryAttempts, maxEventAge });
    new events.Rule(this, 'SchedulerTick', {
      ruleName: `${name}-scheduler-tick`,
      description: 'norris extraction scheduler tick',
      schedule: events.Schedule.expression(d.schedulerRate),
      // A tick older than a few minutes is superseded by the next one.
      targets: [target('extraction-scheduler', 2, Duration.minutes(4))],
    });
    new events.Rule(this, 'EmrClusterStateChange', {
      ruleName: `${name}-emr-cluster-state`,
      description: 'EMR cluster state changes (best effort; the sweep catches lost ones)',
      eventPattern: { source: ['aws.emr'], detailType: ['EMR Cluster State Change'] },
      targets: [target('cluster-health-watcher', 8, Duration.hours(1))],
    });
    new events.Rule(this, 'SpotSignals', {
      ruleName: `${name}-spot-signals`,
      description: 'EC2 spot interruption warnings and rebalance recommendations (2-minute notice)',
      eventPattern: { source: ['aws.ec2'], detailType: ['EC2 Spot Instance Interruption Warning', 'EC2 Instance Rebalance Recommendation'] },
      // The warning is worth acting on for about two minutes only.
      targets: [target('cluster-health-watcher', 3, Duration.minutes(2))],
    });
    new events.Rule(this, 'ClusterAlarms', {
      ruleName: `${name}-cluster-alarms`,
      description: `CloudWatch alarm state changes of alarms named ${clusterAlarmPrefix(name)}* (cluster health)`,
      eventPattern: {
        source: ['aws.cloudwatch'],
        detailType: ['CloudWatch Alarm State Change'],
        detail: { alarmName: events.Match.prefix(clusterAlarmPrefix(name)) },
      },
      targets: [target('cluster-health-watcher', 8, Duration.hours(1))],
    });
    new events.Rule(this, 'Rotation', {
      ruleName: `${name}-rotation`,
      description: 'norris cluster rotation and idle scale-down',
      schedule: events.Schedule.expression(d.rotationRate),
      targets: [target('rotation-handler', 2, Duration.minutes(10))],
    });
    new events.Rule(this, 'Sweep', {
      ruleName: `${name}-sweep`,
      description: 'level-triggered sweep behind the best-effort EMR and EC2 events',
      schedule: events.Schedule.expression(d.sweepRate),
      targets: [target('cluster-health-watcher', 2, Duration.minutes(4)), target('job-migrator', 2, Duration.minutes(4))],
    });
    new events.Rule(this, 'NorrisEvents', {
      ruleName: `${name}-norris-events`,
      description: 'norris\'s own events (cluster lost, draining, replaced) to the job migrator',
      eventBus: bus,
      eventPattern: { source: ['norris'] },
      targets: [target('job-migrator', 8, Duration.hours(6))],
    });

    // ---------------------------------------------------------------- alarms and dashboard
    this.alarmsAndDashboard(d);

    // ---------------------------------------------------------------- outputs
    const out = (id: string, value: string, description: string) => new CfnOutput(this, id, { value, description });
    for (const t of tableDefs) out(`${pascal(t.key)}TableName`, this.tables[t.key].tableName, t.description);
    for (const fn of FUNCTIONS) out(`${pascal(fn)}FunctionName`, f[fn].functionName, `the ${fn} Lambda`);
    out('LakeBucketName', lakeBucket.bucketName, 'the lake bucket (lake_uri s3://<this>/...)');
    out('ArtifactsBucketName', artifactsBucket.bucketName, 'upload livy-jobs/ here (livy.file s3://<this>/livy-jobs/...)');
    out('LogBucketName', logBucket.bucketName, 'EMR logs (emr/), S3 access logs, VPC flow logs');
    out('EventBusName', bus.eventBusName, 'norris\'s own events');
    out('EmrServiceRoleName', this.emrServiceRole.roleName, 'EMR service role');
    out('EmrInstanceProfileName', instanceProfile.instanceProfileName, 'EMR EC2 instance profile');
    out('EmrSecurityConfigurationName', securityConfiguration.ref, 'EMR security configuration');
    out('KeyArn', key.keyArn, 'the deployment\'s KMS key');

    if (props.acknowledgeNagFindings !== false) {
      for (const a of this.nagAcknowledgements) Validations.of(a.construct).acknowledge({ id: a.id, reason: a.reason });
    }
  }

  private acknowledge(construct: IConstruct, id: string, reason: string): void {
    const same = this.nagAcknowledgements.find((a) => a.construct === construct && a.id === id);
    if (same) same.reason = `${same.reason} Also: ${reason}`;
    else this.nagAcknowledgements.push({ construct, id, reason });
  }

  private table(t: TableDef): dynamodb.Table {
    const attr = (k: { name: string; type: string }) => ({
      name: k.name,
      type: k.type === 'N' ? dynamodb.AttributeType.NUMBER : k.type === 'B' ? dynamodb.AttributeType.BINARY : dynamodb.AttributeType.STRING,
    });
    const table = new dynamodb.Table(this, `Table${pascal(t.key)}`, {
      tableName: `${this.deployment.name}-${t.key}`,
      partitionKey: attr(t.partitionKey),
      sortKey: t.sortKey ? attr(t.sortKey) : undefined,
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: this.key,
      timeToLiveAttribute: t.ttlAttribute,
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const ix of t.indexes) {
      table.addGlobalSecondaryIndex({
        indexName: ix.name,
        partitionKey: attr(ix.partitionKey),
        sortKey: ix.sortKey ? attr(ix.sortKey) : undefined,
        projectionType: ix.projection === 'KEYS_ONLY' ? dynamodb.ProjectionType.KEYS_ONLY : dynamodb.ProjectionType.ALL,
      });
    }
    return table;
  }

  private network(d: Deployment, logBucket: s3.Bucket): { vpc: ec2.IVpc; subnets: ec2.SelectedSubnets } {
    if ('imported' in d.vpc) {
      const v = d.vpc.imported;
      const vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', {
        vpcId: v.vpcId,
        availabilityZones: v.availabilityZones,
        privateSubnetIds: v.privateSubnetIds,
      });
      return { vpc, subnets: vpc.selectSubnets({ subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }) };
    }
    const c = d.vpc.created;
    const vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(c.cidr),
      maxAzs: c.maxAzs,
      natGateways: c.natGateways,
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24, mapPublicIpOnLaunch: false },
        { name: 'private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
      ],
      gatewayEndpoints: {
        S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
        DynamoDB: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
      },
      flowLogs: {
        toS3: { destination: ec2.FlowLogDestination.toS3(logBucket, 'vpc-flow-logs/'), trafficType: ec2.FlowLogTrafficType.ALL },
      },
      restrictDefaultSecurityGroup: false,
    });
    const subnets = vpc.selectSubnets({ subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS });
    for (const s of subnets.subnets) Tags.of(s).add('for-use-with-amazon-emr-managed-policies', 'true');
    return { vpc, subnets };
  }

  private controlPlaneFunction(spec: FunctionSpec, code: CodeSource, vpc: ec2.IVpc, subnets: ec2.SelectedSubnets,
    environment: Record<string, string>): lambda.Function {
    const d = this.deployment;
    const id = pascal(spec.fn);
    const functionName = `${d.name}-${spec.fn}`;
    const logGroup = new logs.LogGroup(this, `${id}Logs`, {
      logGroupName: `/aws/lambda/${functionName}`,
      retention: d.logRetentionDays as logs.RetentionDays,
      encryptionKey: this.key,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const dlq = new sqs.Queue(this, `${id}Dlq`, {
      queueName: `${functionName}-dlq`,
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: this.key,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.deadLetterQueues[spec.fn] = dlq;

    // Our own role, no managed policies: logs to its own group, VPC network interfaces, the key.
    const role = new iam.Role(this, `${id}Role`, {
      description: `norris ${d.name} ${spec.fn} Lambda`,
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    });
    role.addToPolicy(new iam.PolicyStatement({
      sid: 'WriteOwnLogs',
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [logGroup.logGroupArn],
    }));
    role.addToPolicy(new iam.PolicyStatement({
      sid: 'DescribeNetworkInterfaces',
      actions: ['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets'],
      resources: ['*'],
    }));
    role.addToPolicy(new iam.PolicyStatement({
      sid: 'ManageVpcNetworkInterfaces',
      actions: ['ec2:CreateNetworkInterface', 'ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
      resources: [`arn:${Aws.PARTITION}:ec2:${Aws.REGION}:${Aws.ACCOUNT_ID}:*/*`],
    }));
    // The key of the environment, tables, queues and the artifacts bucket (group specs are written
    // there: S3 asks KMS for a data key, kms:GenerateDataKey, on the writer's behalf).
    role.addToPolicy(new iam.PolicyStatement({
      sid: 'UseTheDeploymentKey',
      actions: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey', 'kms:DescribeKey'],
      resources: [this.key.keyArn],
    }));
    const policy = role.node.findChild('DefaultPolicy');
    this.acknowledge(policy, 'AwsSolutions-IAM5[Resource::*]',
      'ec2:DescribeNetworkInterfaces and ec2:DescribeSubnets work only on Resource * (the Lambda VPC permissions); they only read.');
    this.acknowledge(policy, 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:*/*]',
      'Lambda creates and deletes its VPC network interfaces under this role; their ids are not known in advance, so the resources are this account and region, as the Lambda VPC guide requires.');

    const fn = new lambda.Function(this, id, {
      functionName,
      description: `norris ${d.name}: ${spec.description}`,
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: lambda.Architecture.X86_64,
      handler: 'bootstrap',
      code: functionCode(code, spec.fn),
      memorySize: spec.memoryMb,
      timeout: spec.timeout,
      reservedConcurrentExecutions: spec.concurrency,
      role,
      environment,
      environmentEncryption: this.key,
      loggingFormat: lambda.LoggingFormat.JSON,
      applicationLogLevelV2: lambda.ApplicationLogLevel.INFO,
      systemLogLevelV2: lambda.SystemLogLevel.WARN,
      logGroup,
      vpc,
      vpcSubnets: { subnets: subnets.subnets },
      securityGroups: [this.controlPlaneSecurityGroup],
      deadLetterQueue: dlq,
      retryAttempts: spec.asyncRetries,
      maxEventAge: spec.maxEventAge,
    });
    return fn;
  }

  private alarmsAndDashboard(d: Deployment): void {
    const name = d.name;
    const topic = new sns.Topic(this, 'AlarmTopic', {
      topicName: `${name}-alarms`,
      displayName: `norris ${name} alarms`,
      masterKey: this.key,
      enforceSSL: true,
    });
    topic.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'ThisDeploymentsAlarmsPublish',
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['sns:Publish'],
      resources: [topic.topicArn],
      conditions: { ArnLike: { 'aws:SourceArn': `arn:${Aws.PARTITION}:cloudwatch:${Aws.REGION}:${Aws.ACCOUNT_ID}:alarm:${name}-*` } },
    }));
    if (d.alarmEmail) topic.addSubscription(new subs.EmailSubscription(d.alarmEmail));
    const action = new cwActions.SnsAction(topic);
    const alarms: cloudwatch.Alarm[] = [];
    const alarm = (id: string, props: cloudwatch.AlarmProps) => {
      const a = new cloudwatch.Alarm(this, id, props);
      a.addAlarmAction(action);
      a.addOkAction(action);
      alarms.push(a);
      return a;
    };
    const five = Duration.minutes(5);
    const deployment = { Deployment: name };

    const runsFailed = new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE, metricName: 'RunsFailed', dimensionsMap: deployment, statistic: 'Sum', period: five,
    });
    alarm('RunsFailedAlarm', {
      alarmName: `${name}-runs-failed`,
      alarmDescription: 'A run exhausted its attempts (RunsFailed > 0): the window is not extracted; see the scheduler logs.',
      metric: runsFailed,
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

    // Watermark lag is published per job (dimensions Deployment, JobId): a Metrics Insights query
    // takes the worst job of the deployment, so a job added later is covered with no redeploy.
    const worstLag = new cloudwatch.MathExpression({
      expression: `SELECT MAX(WatermarkLag) FROM SCHEMA("${METRICS_NAMESPACE}", Deployment, JobId) WHERE Deployment = '${name}'`,
      label: 'worst watermark lag (s)',
      period: five,
      usingMetrics: {},
    });
    alarm('WatermarkLagAlarm', {
      alarmName: `${name}-watermark-lag`,
      alarmDescription: `The most-behind job's watermark lag exceeds the SLO (${d.watermarkLagSloSecs} s).`,
      metric: worstLag,
      threshold: d.watermarkLagSloSecs,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 2,
      datapointsToAlarm: 2,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    for (const [job, slo] of Object.entries(d.jobLagSlos)) {
      alarm(`WatermarkLag${pascal(job)}Alarm`, {
        alarmName: `${name}-watermark-lag-${job}`,
        alarmDescription: `Job ${job}: watermark lag exceeds its SLO (${slo} s).`,
        metric: new cloudwatch.Metric({
          namespace: METRICS_NAMESPACE, metricName: 'WatermarkLag', dimensionsMap: { ...deployment, JobId: job },
          statistic: 'Maximum', period: five,
        }),
        threshold: slo,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 2,
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      });
    }

    for (const fnName of FUNCTIONS) {
      const id = pascal(fnName);
      const fn = this.functions[fnName];
      alarm(`${id}ErrorsAlarm`, {
        alarmName: `${name}-${fnName}-errors`,
        alarmDescription: `The ${fnName} Lambda failed (Errors > 0).`,
        metric: fn.metricErrors({ period: five, statistic: 'Sum' }),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      alarm(`${id}DlqAlarm`, {
        alarmName: `${name}-${fnName}-dlq-not-empty`,
        alarmDescription: `Events for ${fnName} were dropped into its dead-letter queue (inspect, then redrive or purge).`,
        metric: this.deadLetterQueues[fnName].metricApproximateNumberOfMessagesVisible({ period: five, statistic: 'Maximum' }),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    }
    alarm('SchedulerNotTickingAlarm', {
      alarmName: `${name}-scheduler-not-ticking`,
      alarmDescription: 'The extraction scheduler was not invoked for 15 minutes.',
      metric: this.functions['extraction-scheduler'].metricInvocations({ period: Duration.minutes(15), statistic: 'Sum' }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });

    const m = (metricName: string, statistic = 'Sum') => new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE, metricName, dimensionsMap: deployment, statistic, period: five,
    });
    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { dashboardName: `${name}` });
    dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({ title: 'alarms', alarms, width: 24, height: 4 }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'windows and runs', width: 12,
        left: ['WindowsCut', 'RunsSubmitted', 'RunsPublished', 'WindowsCommitted', 'RunsRetried', 'RunsFailed'].map((n) => m(n)),
      }),
      new cloudwatch.GraphWidget({
        title: 'worst watermark lag (s)', width: 12, left: [worstLag],
        leftAnnotations: [{ value: d.watermarkLagSloSecs, label: 'SLO' }],
      }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({ title: 'problems', width: 8, left: ['InvalidJobs', 'JobFailures', 'RunsWaitingForCluster'].map((n) => m(n)) }),
      new cloudwatch.GraphWidget({ title: 'tick duration (ms)', width: 8, left: [m('TickDuration', 'Maximum'), m('TickDuration', 'Average')] }),
      new cloudwatch.GraphWidget({
        title: 'dead-letter queues', width: 8,
        left: FUNCTIONS.map((fn) => this.deadLetterQueues[fn].metricApproximateNumberOfMessagesVisible({ period: five, label: fn })),
      }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({ title: 'Lambda errors', width: 8, left: FUNCTIONS.map((fn) => this.functions[fn].metricErrors({ period: five, label: fn })) }),
      new cloudwatch.GraphWidget({ title: 'Lambda duration (max)', width: 8, left: FUNCTIONS.map((fn) => this.functions[fn].metricDuration({ period: five, statistic: 'Maximum', label: fn })) }),
      new cloudwatch.GraphWidget({ title: 'Lambda throttles', width: 8, left: FUNCTIONS.map((fn) => this.functions[fn].metricThrottles({ period: five, label: fn })) }),
    );
    new CfnOutput(this, 'AlarmTopicArn', { value: topic.topicArn, description: 'subscribe here for alarm notifications' });
    new CfnOutput(this, 'DashboardName', { value: dashboard.dashboardName, description: 'CloudWatch dashboard' });
  }
}

/** A checkov finding skipped on one resource (template metadata), with the reason it is acceptable. */
export function skipCheckov(construct: IConstruct, id: string, comment: string): void {
  const cfn = (construct.node.defaultChild ?? construct) as CfnResource;
  const existing = (cfn.getMetadata('checkov') as { skip?: { id: string; comment: string }[] } | undefined)?.skip ?? [];
  cfn.addMetadata('checkov', { skip: [...existing, { id, comment }] });
}

/** `extraction-scheduler` -> `ExtractionScheduler`, `shop.orders` -> `ShopOrders`. */
export function pascal(s: string): string {
  return s.split(/[^A-Za-z0-9]+/).filter(Boolean).map((w) => w[0].toUpperCase() + w.slice(1)).join('');
}

/** The function's code: its packaged zip, or the placeholder (tests, offline gates). */
export function functionCode(code: CodeSource, fn: FunctionName): lambda.Code {
  if (code.kind === 'placeholder') return lambda.Code.fromAsset(PLACEHOLDER_DIR);
  const zip = path.join(code.targetDir, fn, 'bootstrap.zip');
  if (!fs.existsSync(zip)) {
    throw new Error(`${zip} is missing: run \`make package\` (bash infra/package.sh) first, ` +
      'or synthesize with -c norris:code=placeholder (tests and checks only: the placeholder fails every invocation)');
  }
  return lambda.Code.fromAsset(zip);
}

/** Alarms whose state changes reach the cluster health watcher: the per-cluster alarms the cluster
 * lifecycle creates must be named with this prefix (no alarm of the stack itself is). */
export function clusterAlarmPrefix(deploymentName: string): string {
  return `${deploymentName}-emr-cluster-`;
}

/** The CloudFormation stack of a deployment: `Norris-<name>`. */
export function stackName(d: Deployment): string {
  return `Norris-${d.name}`;
}
