// What every jsforce scenario shares: the arguments, the connection and the JSON output.
// Usage of a scenario: node SCENARIO.mjs '{"url": ..., "username": ..., "password": ..., "clientId": ..., "clientSecret": ...}'
// Each scenario prints one JSON document per line ({"step": value}); the pytest side merges them.
// jsforce runs unchanged: only its login URL points at the emulator, and Node trusts the emulator's CA
// through NODE_EXTRA_CA_CERTS.
import jsforce from 'jsforce';

export const args = JSON.parse(process.argv[2]);
export const VERSION = '62.0';

export function emit(key, value) {
    console.log(JSON.stringify({ [key]: value }));
}

/** A connection logged in with the OAuth 2.0 username-password flow (jsforce's `oauth2` option). */
export async function oauthConnection() {
    const oauth2 = new jsforce.OAuth2({
        loginUrl: args.url, clientId: args.clientId, clientSecret: args.clientSecret, redirectUri: `${args.url}/callback`,
    });
    const conn = new jsforce.Connection({ oauth2, version: VERSION });
    await conn.login(args.username, args.password);
    return conn;
}

/** A connection logged in through the SOAP partner login() call (jsforce's default without `oauth2`). */
export async function soapConnection() {
    const conn = new jsforce.Connection({ loginUrl: args.url, version: VERSION });
    await conn.login(args.username, args.password);
    return conn;
}

/** Sends `rows` as one Bulk 1.0 batch of a new job, waits for its results and closes the job (unlike
 * conn.bulk.load(), which closes it in the background). */
export async function bulkBatch(conn, object, operation, rows) {
    const job = conn.bulk.createJob(object, operation);
    const batch = job.createBatch();
    const results = await new Promise((resolve, reject) => {
        batch.on('error', reject);
        batch.on('queue', () => batch.poll(100, 30000));
        batch.on('response', resolve);
        batch.execute(rows);
    });
    await job.close();
    return { job, results };
}

/** Runs a scenario. An error prints its errorCode and message on stderr and fails the process, and
 * so does a call whose promise never settles (Node then exits with nothing left to do). After the
 * scenario, requests jsforce sends in the background (Bulk 1.0 closes its jobs) may finish; a
 * client that never lets go (a Streaming long poll) is cut after a second. */
export async function run(scenario) {
    let finished = false;
    process.exitCode = 1;
    process.on('exit', () => finished || console.error('the scenario stopped before its end'));
    try {
        await scenario();
        finished = true;
        process.exitCode = 0;
        setTimeout(() => process.exit(0), 1000).unref();
    } catch (error) {
        finished = true;
        console.error(error && error.stack ? error.stack : error);
        if (error && error.errorCode) console.error(`errorCode=${error.errorCode}`);
        process.exit(1);
    }
}

export { jsforce };
