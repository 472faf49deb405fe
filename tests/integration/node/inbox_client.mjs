// Subscribes to inboxEvents with the reference `graphql-ws` client and prints each event as one JSON line.
// Usage: node inbox_client.mjs <ws url> <subscriber token> <events to print before exiting>
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, token, wanted] = process.argv.slice(2);
const client = createClient({ url, webSocketImpl: WebSocket, connectionParams: { token }, retryAttempts: 0 });
let printed = 0;
const unsubscribe = client.subscribe(
  {
    query: `subscription { inboxEvents {
      __typename
      ... on NotificationReceived { seq cursor notification { id subject } }
      ... on CountsChanged { seq counts { total unread unseen } } } }`,
  },
  {
    next: (result) => {
      console.log(JSON.stringify(result));
      printed += 1;
      if (printed >= Number(wanted)) {
        unsubscribe();
        client.dispose();
        process.exit(0);
      }
    },
    error: (error) => {
      console.error(JSON.stringify(error, Object.getOwnPropertyNames(error ?? {})));
      process.exit(2);
    },
    complete: () => process.exit(3),
  },
);
