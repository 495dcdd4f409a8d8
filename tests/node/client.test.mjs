// A Node.js caller of prospectsync.v1.ProspectSync, as another team would write one:
// @grpc/grpc-js with @grpc/proto-loader (no code generation), the repository's
// grpc_service_config.json as the channel's service config, and the vendored
// google/rpc protos to read the error details in grpc-status-details-bin.
//
// tests/e2e/test_node_client.py runs it with `node --test` against a live server on
// 127.0.0.1:<free port> and fakepardot over HTTP. By hand, against `make run`:
//   PROSPECTSYNC_TARGET=127.0.0.1:50051 PROSPECTSYNC_FAKE_URL=http://127.0.0.1:8750 \
//     node --test tests/node/
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, "..", "..");
const TARGET = process.env.PROSPECTSYNC_TARGET;
const FAKE_URL = process.env.PROSPECTSYNC_FAKE_URL;
const PROTOS = process.env.PROSPECTSYNC_PROTOS ?? join(REPO, "protos");
const SERVICE_CONFIG =
  process.env.PROSPECTSYNC_SERVICE_CONFIG ?? join(REPO, "grpc_service_config.json");
const HEALTH_PROTO = join(HERE, "node_modules", "grpc-health-check", "proto", "health", "v1", "health.proto");

if (!TARGET) {
  throw new Error("set PROSPECTSYNC_TARGET=host:port (tests/e2e/test_node_client.py does)");
}

// keepCase keeps the .proto's field names (user_id, prospect_id, field_violations). It
// does not reach google.protobuf.Struct: protobufjs ships Value with camelCase fields, so
// a trait is {stringValue: "…"}, never {string_value: "…"} (docs/clients.md).
const LOADER_OPTIONS = { keepCase: true, enums: String, longs: String, defaults: true, oneofs: true };

const definition = protoLoader.loadSync(["prospectsync/v1/prospect_sync.proto"], {
  ...LOADER_OPTIONS,
  includeDirs: [PROTOS],
});
const { ProspectSync } = grpc.loadPackageDefinition(definition).prospectsync.v1;
const { Health } = grpc.loadPackageDefinition(protoLoader.loadSync(HEALTH_PROTO, LOADER_OPTIONS))
  .grpc.health.v1;

// protobufjs resolves google/protobuf/* from its bundled copies, google/rpc/* from ours.
const rpcProtos = new protobuf.Root();
rpcProtos.resolvePath = (_origin, target) =>
  target.startsWith("google/protobuf/") ? target : join(PROTOS, target);
rpcProtos.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"]);
rpcProtos.resolveAll();
const Status = rpcProtos.lookupType("google.rpc.Status");

/** The details of a google.rpc.Status (an Any each), decoded by their type URL. */
function unpackDetails(details) {
  return details.map((any) => {
    const typeUrl = any.type_url ?? any.typeUrl;
    const type = rpcProtos.lookupType(typeUrl.slice(typeUrl.lastIndexOf("/") + 1));
    return { type: type.fullName.slice(1), value: type.toObject(type.decode(any.value)) };
  });
}

/** The rich status of a failed call: grpc-status-details-bin, a google.rpc.Status. */
function richStatus(error) {
  const [bytes] = error.metadata.get("grpc-status-details-bin");
  assert.ok(bytes, `no grpc-status-details-bin on ${error.code} ${error.details}`);
  const status = Status.toObject(Status.decode(bytes));
  return { code: status.code, message: status.message, details: unpackDetails(status.details) };
}

function detail(details, type) {
  return details.find((d) => d.type === type)?.value;
}

/** A google.protobuf.Struct from a plain object of strings (what proto-loader expects). */
function struct(values) {
  const fields = {};
  for (const [key, value] of Object.entries(values)) fields[key] = { stringValue: value };
  return { fields };
}

function call(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: Date.now() + 20_000 }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

async function failure(promise) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("the call succeeded; an error was expected");
}

async function fake(method, path, body) {
  assert.ok(FAKE_URL, "set PROSPECTSYNC_FAKE_URL to fakepardot's URL for this test");
  const response = await fetch(`${FAKE_URL}/_fake${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(response.ok, `${method} /_fake${path}: HTTP ${response.status}`);
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

const serviceConfig = readFileSync(SERVICE_CONFIG, "utf8");
let client; // with the repository's service config: per-method timeouts and retries
let plain; // without it
let health;

before(() => {
  client = new ProspectSync(TARGET, grpc.credentials.createInsecure(), {
    "grpc.service_config": serviceConfig,
  });
  plain = new ProspectSync(TARGET, grpc.credentials.createInsecure(), {
    "grpc.service_config_disable_resolution": 1,
  });
  health = new Health(TARGET, grpc.credentials.createInsecure());
});

after(() => {
  for (const each of [client, plain, health]) each?.close();
});

describe("prospectsync.v1.ProspectSync from Node.js", () => {
  test("health answers SERVING for the server and for the service", async () => {
    for (const service of ["", "prospectsync.v1.ProspectSync"]) {
      const reply = await call(health, "Check", { service });
      assert.equal(reply.status, "SERVING", `health of "${service}"`);
    }
  });

  test("Identify on v3 creates the prospect, then updates the same one", async () => {
    const request = {
      user_id: "u-node",
      traits: struct({ email: "node@example.com", first_name: "Ada", company: "Initech" }),
      settings: { connection: "v3" },
    };
    const created = await call(client, "Identify", request);
    assert.equal(created.outcome, "OUTCOME_CREATED");
    assert.equal(created.strategy, "EmailV3");
    assert.match(created.prospect_id, /^\d+$/);
    assert.equal(created.pardot_calls.length, 1);

    request.traits = struct({ email: "node@example.com", first_name: "Ada L." });
    const updated = await call(client, "Identify", request);
    assert.equal(updated.outcome, "OUTCOME_UPDATED");
    assert.equal(updated.prospect_id, created.prospect_id);
  });

  test("INVALID_ARGUMENT carries ErrorInfo and BadRequest in grpc-status-details-bin", async () => {
    const error = await failure(
      call(client, "Identify", { traits: struct({ name: "No Email" }), settings: { connection: "v3" } }),
    );
    assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
    const status = richStatus(error);
    assert.equal(status.code, grpc.status.INVALID_ARGUMENT);
    assert.equal(status.message, error.details);
    const info = detail(status.details, "google.rpc.ErrorInfo");
    assert.equal(info.domain, "prospectsync.pardot");
    assert.match(info.reason, /^[A-Z][A-Z0-9_]+$/);
    const badRequest = detail(status.details, "google.rpc.BadRequest");
    assert.deepEqual(
      badRequest.fieldViolations.map((v) => v.field),
      ["traits.email"],
    );
  });

  test("a snake_case Struct value is dropped, keepCase or not (docs/clients.md)", async () => {
    const snake = { fields: { email: { string_value: "snake@example.com" } } };
    const error = await failure(call(client, "Identify", { traits: snake, settings: { connection: "v3" } }));
    assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
    assert.match(error.details, /^traits\.email is required/);
  });

  test("BatchSync answers every item, the broken one with its status and details", async () => {
    const identify = (traits) => ({ identify: { traits: struct(traits), settings: { connection: "v3" } } });
    const reply = await call(client, "BatchSync", {
      items: [
        identify({ email: "batch-1@example.com" }),
        identify({ name: "No Email" }),
        identify({ email: "batch-3@example.com" }),
      ],
    });
    assert.deepEqual(
      reply.results.map((r) => r.result),
      ["identify", "error", "identify"],
    );
    assert.equal(reply.results[0].identify.outcome, "OUTCOME_CREATED");
    assert.equal(reply.results[2].identify.outcome, "OUTCOME_CREATED");
    const broken = reply.results[1].error;
    assert.equal(broken.code, grpc.status.INVALID_ARGUMENT);
    const details = unpackDetails(broken.details);
    assert.equal(detail(details, "google.rpc.ErrorInfo").domain, "prospectsync.pardot");
    assert.deepEqual(
      detail(details, "google.rpc.BadRequest").fieldViolations.map((v) => v.field),
      ["items[1].identify.traits.email"], // the path within the BatchSyncRequest
    );
  });

  test("grpc_service_config.json is the channel's service config: UNAVAILABLE is retried", async () => {
    const methods = Object.keys(ProspectSync.service);
    const named = JSON.parse(serviceConfig).methodConfig.flatMap((c) => c.name.map((n) => n.method));
    assert.deepEqual([...methods].sort(), [...named].sort(), "every RPC has a method config");

    const request = (n) => ({ traits: struct({ email: `retry-${n}@example.com` }), settings: { connection: "v3" } });
    const refusals = async () => (await fake("GET", "/calls")).filter((c) => c.err_code === 66).length;
    // Pardot refuses every upsert (err 66, "too many concurrent requests"): the server
    // retries, then answers UNAVAILABLE. How many refusals one gRPC call meets:
    await fake("POST", "/inject", { kind: "err", err_code: 66, times: 1000, path_contains: "/do/upsert/" });
    const before = await refusals();
    const unavailable = await failure(call(plain, "Identify", request(1)));
    assert.equal(unavailable.code, grpc.status.UNAVAILABLE);
    const perCall = (await refusals()) - before;
    assert.ok(perCall >= 1);
    await fake("DELETE", "/faults");

    // Exactly one gRPC attempt's worth of refusals: without the service config the call
    // fails; with it, grpc-js retries the UNAVAILABLE and the second attempt succeeds.
    await fake("POST", "/inject", { kind: "err", err_code: 66, times: perCall, path_contains: "/do/upsert/" });
    assert.equal((await failure(call(plain, "Identify", request(2)))).code, grpc.status.UNAVAILABLE);
    await fake("POST", "/inject", { kind: "err", err_code: 66, times: perCall, path_contains: "/do/upsert/" });
    const retried = await call(client, "Identify", request(3));
    assert.equal(retried.outcome, "OUTCOME_CREATED");
  });
});
