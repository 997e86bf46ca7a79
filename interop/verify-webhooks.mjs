// Verifies Standard Webhooks signatures with the reference `standardwebhooks` package, as an
// implementation independent of herald's. Reads a JSON array of checks on stdin, each
// {"secret", "headers": {"webhook-id", "webhook-timestamp", "webhook-signature"}, "body"},
// and prints a JSON array of booleans: whether each check's secret verifies its message.
import { Webhook } from "standardwebhooks";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const results = JSON.parse(input).map(({ secret, headers, body }) => {
  try {
    new Webhook(secret).verify(body, headers);
    return true;
  } catch {
    return false;
  }
});
console.log(JSON.stringify(results));
