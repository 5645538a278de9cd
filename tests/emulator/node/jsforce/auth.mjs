// jsforce's logins against the emulator: the OAuth 2.0 username-password flow, the SOAP partner login(),
// an expired access token renewed with the refresh token (jsforce's own retry), both logouts, sessions
// expiring under REST, SOAP, Bulk 1.0 and Bulk 2.0 calls (jsforce knows each API's expiry answer and
// logs in again), and the errors of bad logins.
// Extra arguments: "staleAccessToken" (expired by the test) and "refreshToken".
import { args, bulkBatch, emit, jsforce, oauthConnection, run, soapConnection, VERSION } from './common.mjs';

// The id, organization and instance URL, never the token itself.
const who = (conn, info) => ({ userId: info.id, organizationId: info.organizationId, instanceUrl: conn.instanceUrl });

async function rejected(promise) {
    try {
        await promise;
        return null;
    } catch (error) {
        return error.errorCode ?? error.name;
    }
}

// jsforce names OAuth errors by the reply's "error" and SOAP login faults by their message.
async function failure(promise) {
    try {
        await promise;
        return null;
    } catch (error) {
        return [error.name, error.message];
    }
}

await run(async () => {
    const oauth = await oauthConnection();
    emit('oauth', who(oauth, oauth.userInfo));
    const identity = await oauth.identity();
    emit('identity', { username: identity.username, userId: identity.user_id, organizationId: identity.organization_id });

    const soap = await soapConnection();
    emit('soap', who(soap, soap.userInfo));
    emit('soapSessionQuery', (await soap.query('SELECT Id, Username FROM User WHERE Id = \'' + soap.userInfo.id + '\'')).records
        .map((r) => r.Username));

    // A connection holding an expired token and a refresh token: jsforce refreshes on the 401 and retries.
    const refreshes = [];
    const stale = new jsforce.Connection({
        oauth2: new jsforce.OAuth2({ loginUrl: args.url, clientId: args.clientId, clientSecret: args.clientSecret,
                                     redirectUri: `${args.url}/callback` }),
        instanceUrl: args.url, accessToken: args.staleAccessToken, refreshToken: args.refreshToken, version: VERSION,
    });
    stale.on('refresh', (accessToken, reply) => refreshes.push({
        newAccessToken: accessToken !== args.staleAccessToken, rotatedRefreshToken: reply.refresh_token !== args.refreshToken,
    }));
    const count = await stale.sobject('User').count();
    // jsforce keeps the refresh token it was given, even when the reply rotated it
    emit('refresh', { userCount: count, refreshes, keptRefreshToken: stale.refreshToken === args.refreshToken });

    // OAuth logout revokes the access token; SOAP logout ends the SOAP session.
    const oauthToken = oauth.accessToken;
    await oauth.logout();
    const soapToken = soap.accessToken;
    await soap.logout();
    const reuse = (accessToken) => new jsforce.Connection({ instanceUrl: args.url, accessToken, version: VERSION })
        .query('SELECT Id FROM User');
    emit('afterLogout', { oauth: await rejected(reuse(oauthToken)), soap: await rejected(reuse(soapToken)) });

    // Every session expires (the emulator's control API, not jsforce) before each call: jsforce must
    // recognise the API's own answer (REST 401, SOAP fault, Bulk 1.0 InvalidSessionId, Bulk 2.0 401),
    // log in again and retry.
    const expire = () => fetch(`${args.url}/__emulator__/sessions/expire`, { method: 'POST' });
    const relogins = {};
    for (const [name, conn] of [['oauth', await oauthConnection()], ['soap', await soapConnection()]]) {
        conn.bulk.pollInterval = 100;
        conn.bulk2.pollInterval = 100;
        let refreshes = 0;
        conn.on('refresh', () => { refreshes += 1; });
        const calls = {
            rest: async () => (await conn.query('SELECT Id FROM User')).totalSize,
            soap: async () => (await conn.soap.getUserInfo()).userName,
            bulk: async () => (await bulkBatch(conn, 'Account', 'insert', [{ Name: `Bulk ${name}` }])).results[0].success,
            bulk2: async () => (await conn.bulk2.loadAndWaitForResults({ object: 'Account', operation: 'insert',
                                                                         input: [{ Name: `Bulk2 ${name}` }] }))
                .successfulResults.length,
        };
        relogins[name] = {};
        for (const [api, call] of Object.entries(calls)) {
            await expire();
            relogins[name][api] = [await call(), refreshes];
        }
    }
    emit('sessionExpiry', relogins);

    const oauth2 = (clientId) => new jsforce.OAuth2({ loginUrl: args.url, clientId, clientSecret: args.clientSecret });
    emit('badLogins', {
        oauthPassword: await failure(new jsforce.Connection({ oauth2: oauth2(args.clientId) }).login(args.username, 'wrong')),
        oauthClient: await failure(new jsforce.Connection({ oauth2: oauth2('unknown') }).login(args.username, args.password)),
        soapPassword: await failure(new jsforce.Connection({ loginUrl: args.url }).login(args.username, 'wrong')),
        badToken: await rejected(reuse('not-a-token')),
    });
});
