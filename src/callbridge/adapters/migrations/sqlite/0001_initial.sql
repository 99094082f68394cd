-- Initial schema. Times are fixed-width ISO-8601 UTC text, so text order is time order.

CREATE TABLE documents (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT,
    doc TEXT NOT NULL,
    PRIMARY KEY (kind, id)
) STRICT, WITHOUT ROWID;

CREATE INDEX documents_kind_tenant ON documents (kind, tenant_id, id);

CREATE TABLE tenant_seq (
    tenant_id TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE events (
    tenant_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    category TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    call_id TEXT,
    data TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
) STRICT, WITHOUT ROWID;

CREATE INDEX events_tenant_call ON events (tenant_id, call_id, seq);

CREATE TABLE cdrs (
    call_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    from_number TEXT NOT NULL,
    to_number TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT NOT NULL,
    doc TEXT NOT NULL
) STRICT;

CREATE INDEX cdrs_tenant_started ON cdrs (tenant_id, started_at, call_id);
CREATE INDEX cdrs_tenant_from ON cdrs (tenant_id, from_number, started_at);
CREATE INDEX cdrs_tenant_to ON cdrs (tenant_id, to_number, started_at);

CREATE TABLE cdr_extensions (
    call_id TEXT NOT NULL REFERENCES cdrs (call_id) ON DELETE CASCADE,
    extension_id TEXT NOT NULL,
    PRIMARY KEY (call_id, extension_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX cdr_extensions_extension ON cdr_extensions (extension_id, call_id);

CREATE TABLE idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    body BLOB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (scope, key)
) STRICT, WITHOUT ROWID;
