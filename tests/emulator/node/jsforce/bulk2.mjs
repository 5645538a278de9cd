// jsforce's Bulk API 2.0 (conn.bulk2): ingest jobs with their successful and failed results,
// upsert on an external ID, delete, a query job's results (jsforce follows Sforce-Locator until "null"),
// queryAll (scanAll), and the errors of a failed ingest job and of a bad query.
import { emit, oauthConnection, run } from './common.mjs';

await run(async () => {
    const conn = await oauthConnection();
    conn.bulk2.pollInterval = 100;
    conn.bulk2.pollTimeout = 30000;

    const load = (object, operation, input, extra = {}) =>
        conn.bulk2.loadAndWaitForResults({ object, operation, input, ...extra });
    const inserted = await load('Contact', 'insert', [
        { LastName: 'Ada', FirstName: 'A' }, { LastName: 'Bea', FirstName: 'B' }, { FirstName: 'No LastName' },
        { LastName: 'Cy', FirstName: 'C' }, { LastName: 'Di', FirstName: 'D' }, { LastName: 'Ed', FirstName: 'E' },
    ]);
    emit('insert', {
        successful: inserted.successfulResults.map((r) => [r.sf__Created, r.LastName]),
        failed: inserted.failedResults.map((r) => [r.sf__Error.split(':')[0], r.FirstName]),
        unprocessed: inserted.unprocessedRecords.length,
    });

    const first = await load('Account', 'upsert', [{ External_Id__c: 'X-1', Name: 'One' }], { externalIdFieldName: 'External_Id__c' });
    const again = await load('Account', 'upsert', [{ External_Id__c: 'X-1', Name: 'One again' }, { External_Id__c: 'X-2', Name: 'Two' }],
                             { externalIdFieldName: 'External_Id__c' });
    emit('upsert', { first: first.successfulResults.map((r) => r.sf__Created),
                     again: again.successfulResults.map((r) => [r.External_Id__c, r.sf__Created]),
                     sameId: again.successfulResults[0].sf__Id === first.successfulResults[0].sf__Id });

    const removed = await load('Contact', 'delete', [{ Id: inserted.successfulResults[0].sf__Id }]);
    emit('delete', removed.successfulResults.length);

    const result = await conn.bulk2.query('SELECT LastName FROM Contact ORDER BY LastName');
    emit('query', (await result.toArray()).map((r) => r.LastName));
    const all = await conn.bulk2.query('SELECT LastName FROM Contact WHERE IsDeleted = true', { scanAll: true });
    emit('queryAll', (await all.toArray()).map((r) => r.LastName));

    const failure = async (promise) => promise.then(() => null, (error) => [error.errorCode ?? null, error.message]);
    emit('failures', {
        unknownColumn: await failure(load('Account', 'insert', 'Nope__c,Name\n1,Bad\n')),
        badQuery: await failure(conn.bulk2.query('SELECT Nope__c FROM Account').then((r) => r.toArray())),
    });
});
