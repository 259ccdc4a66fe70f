// Validate recorded live responses against doc/openapi.yaml.
//   node validate.mjs OPENAPI.yaml RESPONSES.jsonl...
// Each line: {"status": 207, "body": {...}, "where": "test name"}.
// Prints one line per invalid response and a summary; exits 1 on any.
import { readFileSync } from "node:fs";
import yaml from "js-yaml";
import OpenAPIResponseValidator from "openapi-response-validator";

const [spec, ...files] = process.argv.slice(2);
const doc = yaml.load(readFileSync(spec, "utf8"));
// The records do not say which request they answer: a status is checked
// against PUT /events-batch's response for it, else GET
// /events-batch/health's (its 200). The 405 of either is the same envelope.
const ops = [doc.paths["/events-batch"].put, doc.paths["/events-batch/health"].get];
// openapi-response-validator does not follow a response's own $ref into
// components/responses (schemas it does follow): resolve those here
const responses = {};
for (const op of ops) {
  for (const [status, r] of Object.entries(op.responses)) {
    const prefix = "#/components/responses/";
    responses[status] ??= r.$ref?.startsWith(prefix)
      ? doc.components.responses[r.$ref.slice(prefix.length)]
      : r;
  }
}
const validator = new OpenAPIResponseValidator.default({
  responses,
  components: doc.components,
});

let checked = 0;
let bad = 0;
const statuses = new Set();
for (const file of files) {
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line.trim()) continue;
    const r = JSON.parse(line);
    checked++;
    statuses.add(r.status);
    const errors = responses[String(r.status)]
      ? validator.validateResponse(r.status, r.body)
      : { message: `status ${r.status} is not documented` };
    if (errors) {
      bad++;
      if (bad <= 20)
        console.log(`invalid ${r.status} from ${r.where}: ${JSON.stringify(errors).slice(0, 600)}`);
    }
  }
}
console.log(`checked ${checked} responses (statuses ${[...statuses].sort().join(" ")}), ${bad} invalid`);
process.exit(bad ? 1 : 0);
