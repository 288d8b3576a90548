/**
 * The tables of the Postgres backend, created and migrated by the backend itself. Each migration
 * runs once per schema, in order, inside one transaction that holds an advisory lock on the
 * schema's name: instances starting at the same moment wait for each other, and the later ones
 * find the work done. Add a migration at the end; never edit one that shipped.
 */

/** The advisory lock class of waygate's migrations (the second key is the hash of the schema name). */
export const MIGRATION_LOCK = 0x5761_7967 // 'Wayg'

/** A schema name waygate accepts: a plain lower-case identifier, so it never needs escaping beyond quotes. */
export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,47}$/

/** The statements of each schema version; `$S` stands for the quoted schema name. */
export const MIGRATIONS: ReadonlyArray<readonly string[]> = [
  // 1: state, records, audit log
  [
    `CREATE TABLE $S.meta (
      id int PRIMARY KEY CHECK (id = 1),
      epoch text NOT NULL,
      revision bigint NOT NULL DEFAULT 0,
      audit_count bigint NOT NULL DEFAULT 0
    )`,
    'INSERT INTO $S.meta (id, epoch) VALUES (1, gen_random_uuid()::text)',
    `CREATE TABLE $S.routes (
      key text COLLATE "C" PRIMARY KEY,
      state json NOT NULL,
      revision bigint NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`,
    `CREATE TABLE $S.config (
      name text COLLATE "C" PRIMARY KEY,
      value json NOT NULL,
      revision bigint NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`,
    `CREATE TABLE $S.records (
      namespace text COLLATE "C" NOT NULL,
      id text COLLATE "C" NOT NULL,
      value json NOT NULL,
      expires_at bigint,
      revision bigint NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (namespace, id)
    )`,
    'CREATE INDEX records_expiry ON $S.records (expires_at) WHERE expires_at IS NOT NULL',
    `CREATE TABLE $S.audit (
      seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      id text COLLATE "C" NOT NULL UNIQUE,
      ts timestamptz NOT NULL,
      key text COLLATE "C" NOT NULL,
      service text COLLATE "C",
      action text COLLATE "C" NOT NULL,
      actor text COLLATE "C" NOT NULL,
      platform text COLLATE "C",
      entry json NOT NULL
    )`,
    'CREATE INDEX audit_ts ON $S.audit (ts)',
    'CREATE INDEX audit_key ON $S.audit (key, seq)',
    'CREATE INDEX audit_service ON $S.audit (service, seq)',
    'CREATE INDEX audit_actor ON $S.audit (actor, seq)',
    'CREATE INDEX audit_action ON $S.audit (action, seq)'
  ],
  // 2: the durable webhook outbox
  [
    `CREATE TABLE $S.outbox (
      id text COLLATE "C" PRIMARY KEY,
      webhook text COLLATE "C" NOT NULL,
      delivery json NOT NULL,
      due bigint NOT NULL,
      attempts int NOT NULL DEFAULT 0,
      lease text,
      created_at bigint NOT NULL
    )`,
    'CREATE INDEX outbox_due ON $S.outbox (due, created_at)',
    `CREATE TABLE $S.outbox_dead (
      id text COLLATE "C" PRIMARY KEY,
      delivery json NOT NULL,
      attempts int NOT NULL,
      last_error text NOT NULL,
      failed_at bigint NOT NULL
    )`
  ]
]

/** The schema version this code expects. */
export const SCHEMA_VERSION = MIGRATIONS.length
