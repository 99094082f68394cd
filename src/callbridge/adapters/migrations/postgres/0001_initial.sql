-- Initial schema. Ordered identifiers use the "C" collation so that ORDER BY matches the
-- code-point order of the other adapters whatever the database locale.

CREATE TABLE documents (
    kind text NOT NULL,
    id text COLLATE "C" NOT NULL,
    tenant_id text,
    doc jsonb NOT NULL,
    PRIMARY KEY (kind, id)
);

CREATE INDEX documents_kind_tenant ON documents (kind, tenant_id, id);

CREATE TABLE tenant_seq (
    tenant_id text PRIMARY KEY,
    last_seq bigint NOT NULL
);

CREATE TABLE events (
    tenant_id text NOT NULL,
    seq bigint NOT NULL,
    type text NOT NULL,
    category text NOT NULL,
    occurred_at timestamptz NOT NULL,
    call_id text,
    data jsonb NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

CREATE INDEX events_tenant_call ON events (tenant_id, call_id, seq);

CREATE TABLE cdrs (
    call_id text COLLATE "C" PRIMARY KEY,
    tenant_id text NOT NULL,
    from_number text NOT NULL,
    to_number text NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at timestamptz NOT NULL,
    doc jsonb NOT NULL
);

CREATE INDEX cdrs_tenant_started ON cdrs (tenant_id, started_at DESC, call_id DESC);
CREATE INDEX cdrs_tenant_from ON cdrs (tenant_id, from_number, started_at DESC);
CREATE INDEX cdrs_tenant_to ON cdrs (tenant_id, to_number, started_at DESC);

CREATE TABLE cdr_extensions (
    call_id text COLLATE "C" NOT NULL REFERENCES cdrs (call_id) ON DELETE CASCADE,
    extension_id text NOT NULL,
    PRIMARY KEY (call_id, extension_id)
);

CREATE INDEX cdr_extensions_extension ON cdr_extensions (extension_id, call_id);

CREATE TABLE idempotency (
    scope text NOT NULL,
    key text NOT NULL,
    fingerprint text NOT NULL,
    status integer NOT NULL,
    body bytea NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
