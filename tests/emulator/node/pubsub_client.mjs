// Drives the npm package salesforce-pubsub-api-client (an independent Pub/Sub API client) against
// the emulator, unchanged: user-supplied session, publish, subscribe from the earliest event.
// Usage: node pubsub_client.mjs ACCESS_TOKEN INSTANCE_URL ORG_ID ENDPOINT MANAGED_SUBSCRIPTION_NAME
// Prints one JSON document per line: {"published": ...}, {"events": [...]}, {"cdc": [...]}, {"managed": ...}.
import PubSubApiClient from 'salesforce-pubsub-api-client';

const [accessToken, instanceUrl, organizationId, pubSubEndpoint, managedName] = process.argv.slice(2);
const quiet = { debug() {}, info() {}, warn() {}, error: (...args) => console.error(...args) };
const client = new PubSubApiClient(
    // the emulator's certificate is not in the client's bundled CA list: its documented test switch
    { authType: 'user-supplied', accessToken, instanceUrl, organizationId, pubSubEndpoint, rejectUnauthorizedSsl: false },
    quiet
);
const print = (doc) => console.log(JSON.stringify(doc, (_, v) => (typeof v === 'bigint' ? v.toString() : v)));

function collect(topic, count) {
    return new Promise((resolve, reject) => {
        const events = [];
        const timer = setTimeout(() => reject(new Error(`timed out on ${topic} with ${events.length} events`)), 20000);
        client.subscribeFromEarliestEvent(topic, (_subscription, type, data) => {
            if (type === 'event') {
                events.push(data);
                if (events.length === count) {
                    clearTimeout(timer);
                    resolve(events);
                }
            } else if (type === 'error') {
                clearTimeout(timer);
                reject(data);
            }
        }, count);
    });
}

try {
    await client.connect();
    const published = await client.publish(
        '/event/Order_Shipped__e',
        { CreatedDate: Date.now(), CreatedById: '', OrderNumber__c: { string: 'NODE-1' }, Amount__c: null, Rush__c: { boolean: true } },
        'node-key'
    );
    print({ published: { replayId: published.replayId, correlationKey: published.correlationKey, error: published.error } });
    const [events, cdc] = await Promise.all([collect('/event/Order_Shipped__e', 2), collect('/data/ContactChangeEvent', 2)]);
    print({ events });
    print({ cdc });
    // a managed subscription the client looks up itself over the Tooling API, then a commit
    const managed = await new Promise((resolve, reject) => {
        const events = [];
        const timer = setTimeout(() => reject(new Error(`timed out on ${managedName}`)), 20000);
        client.subscribeWithManagedSubscription(managedName, (subscription, type, data) => {
            if (type === 'event') {
                events.push(data);
                if (events.length === 2) {
                    clearTimeout(timer);
                    const commitRequestId = client.commitReplayId(subscription.subscriptionId, data.replayId);
                    setTimeout(() => resolve({ replayIds: events.map((e) => e.replayId), commitRequestId }), 500);
                }
            } else if (type === 'error') {
                clearTimeout(timer);
                reject(data);
            }
        }, 2).catch(reject);
    });
    print({ managed });
    client.close();
    process.exit(0);
} catch (error) {
    console.error(error, error.cause);
    process.exit(1);
}
