/**
 * The config schema of provider `gpu`: registered with the framework's schema handler and checked again
 * by the plugin itself (the framework only warns by default), so a typo fails `sls package` naming the field.
 */
const target = { enum: ['cloudrun', 'gke', 'batch', 'local'] };
const duration = {
  anyOf: [
    { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$' },
    { type: 'number', exclusiveMinimum: 0 },
  ],
};
const memory = {
  anyOf: [
    { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)?(Mi|Gi|M|G)$' },
    { type: 'integer', minimum: 1 },
  ],
};
const gpu = {
  anyOf: [
    { type: 'string', minLength: 1 },
    {
      type: 'object',
      properties: { type: { type: 'string', minLength: 1 }, count: { type: 'integer', minimum: 1 } },
      required: ['type'],
      additionalProperties: false,
    },
  ],
};
const weights = {
  type: 'object',
  properties: { prefix: { type: 'string', minLength: 1 }, source: { type: 'string', minLength: 1 } },
  required: ['prefix'],
  additionalProperties: false,
};
const stringMap = { type: 'object', additionalProperties: { type: 'string' } };

/** Per-function keys in serverless.yml: the handler, and per-stage overrides of the annotation. */
export const functionProperties = {
  properties: {
    handler: { type: 'string', pattern: '^[^.]+(\\.[^.]+)*\\.[A-Za-z_$][A-Za-z0-9_$]*$' },
    target,
    gpu,
    cpu: { type: 'number', exclusiveMinimum: 0 },
    memory,
    minInstances: { type: 'integer', minimum: 0 },
    maxInstances: { type: 'integer', minimum: 1 },
    concurrency: { type: 'integer', minimum: 1 },
    timeout: duration,
    retries: { type: 'integer', minimum: 0, maximum: 10 },
    env: stringMap,
    secrets: { type: 'array', items: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' } },
    weights,
    invokers: { type: 'array', items: { type: 'string', pattern: '^(user|serviceAccount|group|domain|principal|principalSet):.+' } },
    public: { type: 'boolean' },
  },
  required: ['handler'],
};

export const providerProperties = {
  properties: {
    target,
    registry: { type: 'string', minLength: 1 },
    builder: { enum: ['auto', 'buildah', 'docker'] },
    gcp: {
      type: 'object',
      properties: {
        project: { type: 'string', minLength: 1 },
        region: { type: 'string', minLength: 1 },
        gpuZonalRedundancyDisabled: { type: 'boolean' },
      },
      additionalProperties: false,
    },
    gke: {
      type: 'object',
      properties: {
        cluster: { type: 'string', minLength: 1 },
        createCluster: { type: 'boolean' },
        location: { type: 'string', minLength: 1 },
        namespace: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' },
        gateway: { type: 'string', pattern: '^https?://' },
      },
      additionalProperties: false,
    },
    aws: {
      type: 'object',
      properties: {
        region: { type: 'string', minLength: 1 },
        subnets: { type: 'array', items: { type: 'string', pattern: '^subnet-' } },
        securityGroups: { type: 'array', items: { type: 'string', pattern: '^sg-' } },
        spot: { type: 'boolean' },
        maxVcpus: { type: 'integer', minimum: 1 },
        callBucket: { type: 'string', minLength: 3 },
        registry: { type: 'string', minLength: 1 },
      },
      additionalProperties: false,
    },
    pulumi: {
      type: 'object',
      properties: { backend: { type: 'string', minLength: 1 } },
      additionalProperties: false,
    },
    weights: {
      type: 'object',
      properties: { bucket: { type: 'string', minLength: 1 }, keep: { type: 'integer', minimum: 1, maximum: 100 } },
      additionalProperties: false,
    },
    region: { type: 'string' },
    environment: stringMap,
  },
};

export const customProperties = {
  properties: {
    gpu: {
      type: 'object',
      properties: {
        client: {
          type: 'object',
          properties: {
            out: { type: 'string', minLength: 1 },
            name: { type: 'string', minLength: 1 },
          },
          additionalProperties: false,
        },
        local: {
          type: 'object',
          properties: {
            host: { const: '127.0.0.1' },
            basePort: { type: 'integer', minimum: 0, maximum: 65535 },
          },
          additionalProperties: false,
        },
        external: { type: 'array', items: { type: 'string', minLength: 1 } },
      },
      additionalProperties: false,
    },
  },
};

/** The schema the plugin checks itself, over provider, functions and custom.gpu. */
export const pluginConfigSchema = {
  type: 'object',
  properties: {
    provider: {
      type: 'object',
      properties: { name: { const: 'gpu' }, stage: { type: 'string' }, ...providerProperties.properties },
      required: ['name'],
      additionalProperties: false,
    },
    functions: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        properties: { name: { type: 'string' }, events: { type: 'array' }, ...functionProperties.properties },
        required: functionProperties.required,
        additionalProperties: false,
      },
    },
    custom: { type: 'object', properties: customProperties.properties },
  },
};
