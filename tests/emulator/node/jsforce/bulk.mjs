// jsforce's Bulk API 1.0 (conn.bulk): CSV batches under XML job control, as jsforce sends them:
// insert, upsert on an external ID, a row that fails, the job's info, a bulk query streamed as CSV, and
// batches Salesforce fails as a whole (an unknown column, a bad query), and a query's update() and
// destroy(), which jsforce sends through Bulk 1.0 above 200 records.
import { bulkBatch, emit, oauthConnection, run } from './common.mjs';

await run(async () => {
    const conn = await oauthConnection();
    conn.bulk.pollInterval = 100;
    conn.bulk.pollTimeout = 30000;

    const rows = Array.from({ length: 5 }, (_, i) => ({ Name: `Bulk ${i}`, External_Id__c: `B-${i}` }));
    const inserted = await conn.bulk.load('Account', 'insert', rows);
    const upserted = await conn.bulk.load('Account', 'upsert', { extIdField: 'External_Id__c' },
                                          [{ External_Id__c: 'B-1', Name: 'Bulk 1 again' }, { External_Id__c: 'B-9', Name: 'Bulk 9' }]);
    const mixed = await conn.bulk.load('Contact', 'insert', [{ LastName: 'Fine', FirstName: 'A' }, { FirstName: 'No LastName' }]);
    emit('load', {
        inserted: inserted.map((r) => [r.success, r.created]), upserted: upserted.map((r) => [r.success, r.created]),
        sameId: upserted[0].id === inserted[1].id,
        mixed: mixed.map((r) => [r.success, r.errors.map((e) => e.split(':')[0])]),
    });

    // The job, as jsforce reads it back.
    const { job, results: deleted } = await bulkBatch(conn, 'Account', 'delete', [{ Id: inserted[4].id }]);
    const info = await job.info();
    const batches = await job.list();
    emit('job', {
        deleted: deleted.map((r) => r.success), object: info.object, operation: info.operation,
        contentType: info.contentType, batches: batches.map((b) => b.state), state: info.state,
        processed: Number(info.numberRecordsProcessed),
    });

    const stream = await conn.bulk.query('SELECT Name, External_Id__c FROM Account ORDER BY Name');
    const records = [];
    await new Promise((resolve, reject) => {
        stream.on('record', (r) => records.push(r)).on('error', reject).on('end', resolve);
    });
    emit('query', records.map((r) => [r.Name, r.External_Id__c]));

    for (let batch = 0; batch < 2; batch += 1) {
        await conn.sobject('Contact').create(Array.from({ length: 150 }, (_, i) => ({ LastName: `Q${batch * 150 + i}` })),
                                             { allOrNone: true });
    }
    const few = await conn.sobject('Contact').find({ LastName: { $like: 'Q1%' } }).update({ Title: 'Few' });
    const many = await conn.sobject('Contact').find({ LastName: { $like: 'Q%' } }).update({ Title: 'Many' });
    const titled = await conn.sobject('Contact').count({ Title: 'Many' });
    const destroyed = await conn.sobject('Contact').find({ LastName: { $like: 'Q%' } }).destroy();
    emit('queryWrites', { few: few.length, many: many.filter((r) => r.success).length, titled,
                          destroyed: destroyed.filter((r) => r.success).length,
                          left: await conn.sobject('Contact').count({ LastName: { $like: 'Q%' } }) });

    const message = async (promise) => promise.then(() => null, (error) => error.message);
    emit('failedBatches', {
        unknownColumn: await message(conn.bulk.load('Account', 'insert', 'Nope__c,Name\n1,Bad\n')),
        unknownObject: await message(conn.bulk.load('Nope__c', 'insert', [{ Name: 'x' }])),
        badQuery: await message(conn.bulk.query('SELECT Nope__c FROM Account')),
    });
});
