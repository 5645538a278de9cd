// jsforce's Streaming API (conn.streaming, CometD over Faye): a PushTopic made over REST, a live
// subscription that receives a create and an update made over REST, and a second client with the
// Replay extension (-2) that receives every retained event, the one from before it subscribed too,
// a Change Data Capture channel (the test selects Account for it), and the AuthFailure extension
// told of a session that expired while a connect was held.
import { createRequire } from 'node:module';

import { args, emit, oauthConnection, run } from './common.mjs';

// jsforce documents its streaming extensions at this CommonJS path
const { StreamingExtension } = createRequire(import.meta.url)('jsforce/api/streaming');

/** Subscribes with `subscribe(listener)`; `ready` settles when the server confirmed the subscription,
 * `events` when `count` messages arrived. */
function subscribeFor(subscribe, count, label) {
    const messages = [];
    let subscription;
    const events = new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${label}: ${messages.length} of ${count} events`)), 20000);
        subscription = subscribe((message) => {
            messages.push(message);
            if (messages.length === count) {
                clearTimeout(timer);
                subscription.cancel();
                resolve(messages);
            }
        });
    });
    const ready = new Promise((resolve, reject) => subscription.then(resolve, reject));
    return { ready, events };
}

const summary = (events) => events.map((e) => [e.event.type, e.event.replayId, e.sobject.Name]);

await run(async () => {
    const conn = await oauthConnection();
    await conn.sobject('PushTopic').create({
        Name: 'NodeAccounts', Query: 'SELECT Id, Name FROM Account', ApiVersion: 62.0,
        NotifyForOperationCreate: true, NotifyForOperationUpdate: true, NotifyForFields: 'Referenced',
    });
    const before = await conn.sobject('Account').create({ Name: 'Before' });

    const live = subscribeFor((listener) => conn.streaming.topic('NodeAccounts').subscribe(listener), 2, 'live');
    await live.ready;  // handshake, connect and subscribe are done: what follows must arrive
    const made = await conn.sobject('Account').create({ Name: 'Streamed' });
    await conn.sobject('Account').update({ Id: made.id, Name: 'Streamed Again' });
    emit('live', summary(await live.events));

    const replay = new StreamingExtension.Replay('/topic/NodeAccounts', -2);
    const client = conn.streaming.createClient([replay]);
    const all = await subscribeFor((listener) => client.subscribe('/topic/NodeAccounts', listener), 3, 'replay').events;
    client.disconnect();
    emit('replay', { events: summary(all), before: all[0].sobject.Id === before.id });

    const changes = subscribeFor((listener) => conn.streaming.topic('/data/AccountChangeEvent').subscribe(listener), 2, 'cdc');
    await changes.ready;
    const changed = await conn.sobject('Account').create({ Name: 'Captured' });
    await conn.sobject('Account').update({ Id: changed.id, Name: 'Captured Again' });
    emit('cdc', (await changes.events).map((m) => {
        const header = m.payload.ChangeEventHeader;
        return [header.changeType, header.recordIds[0] === changed.id, m.payload.Name, header.changedFields ?? null];
    }));

    // The emulator's control API (not jsforce) expires every session while the client's connect is held.
    let failed;
    const authFailure = new Promise((resolve) => { failed = resolve; });
    const guarded = conn.streaming.createClient([new StreamingExtension.AuthFailure((message) => failed(message))]);
    await guarded.subscribe('/topic/NodeAccounts', () => {});
    await fetch(`${args.url}/__emulator__/sessions/expire`, { method: 'POST' });
    const message = await authFailure;
    emit('authFailure', { channel: message.channel, error: message.error, advice: message.advice });
});
