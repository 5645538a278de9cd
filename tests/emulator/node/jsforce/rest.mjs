// jsforce's REST calls: single-record CRUD and upsert, sObject Collections (jsforce sends arrays
// through /composite/sobjects), SOQL with queryMore and autoFetch, relationship queries, SOSL, describe.
import { emit, oauthConnection, run } from './common.mjs';

const errorOf = async (promise) => {
    try {
        await promise;
        return null;
    } catch (error) {
        return { errorCode: error.errorCode, message: error.message };
    }
};

await run(async () => {
    const conn = await oauthConnection();
    const accounts = conn.sobject('Account');

    const created = await accounts.create({ Name: 'Node One', Industry: 'Energy' });
    await accounts.update({ Id: created.id, Industry: 'Banking' });
    const read = await accounts.retrieve(created.id);
    const first = await accounts.upsert({ External_Id__c: 'EXT-1', Name: 'Upserted' }, 'External_Id__c');
    const second = await accounts.upsert({ External_Id__c: 'EXT-1', Name: 'Upserted Again' }, 'External_Id__c');
    emit('crud', { created: created.success, name: read.Name, industry: read.Industry,
                   upsert: [first.created, second.created, first.id === second.id] });
    await accounts.destroy(created.id);
    emit('deleted', await errorOf(accounts.retrieve(created.id)));

    // sObject Collections: 3 x 150 contacts under one parent, then read, update and delete in batches.
    const parent = await accounts.create({ Name: 'Parent' });
    const ids = [];
    for (let batch = 0; batch < 3; batch += 1) {
        const rows = Array.from({ length: 150 }, (_, i) => ({ LastName: `L${String(batch * 150 + i).padStart(3, '0')}`,
                                                               AccountId: parent.id }));
        ids.push(...(await conn.sobject('Contact').create(rows, { allOrNone: true })).map((r) => r.id));
    }
    const some = await conn.sobject('Contact').retrieve(ids.slice(0, 3), { fields: ['LastName'] });
    const updated = await conn.sobject('Contact').update(ids.slice(0, 3).map((Id) => ({ Id, Title: 'Node' })));
    const rolledBack = await conn.sobject('Contact').create([{ LastName: 'Fine' }, { FirstName: 'No LastName' }],
                                                            { allOrNone: true });
    const removed = await conn.sobject('Contact').destroy(ids.slice(-10));
    const upserts = await accounts.upsert([{ External_Id__c: 'EXT-1', Name: 'Bulk 1' }, { External_Id__c: 'EXT-2', Name: 'Bulk 2' }],
                                          'External_Id__c', { multi: true, allOrNone: true });
    const repeated = await accounts.upsert([{ External_Id__c: 'EXT-3', Name: 'A' }, { External_Id__c: 'ext-3', Name: 'B' }],
                                           'External_Id__c', { multi: true });
    emit('collections', {
        created: ids.length, retrieved: some.map((r) => r.LastName), updated: updated.map((r) => r.success),
        rolledBack: rolledBack.map((r) => [r.success, r.errors.map((e) => e.statusCode)]),
        removed: removed.filter((r) => r.success).length, upserted: upserts.map((r) => r.created),
        repeated: repeated.map((r) => [r.success, r.errors.map((e) => e.statusCode)]),
    });

    // SOQL pages of 200 (Sforce-Query-Options), followed with queryMore and then with autoFetch.
    const soql = 'SELECT Id, LastName FROM Contact ORDER BY LastName';
    const headers = { 'Sforce-Query-Options': 'batchSize=200' };
    const page1 = await conn.query(soql, { headers });
    const page2 = await conn.queryMore(page1.nextRecordsUrl);
    const page3 = await conn.queryMore(page2.nextRecordsUrl);
    emit('queryMore', { totalSize: page1.totalSize, pages: [page1, page2, page3].map((p) => [p.records.length, p.done]),
                        last: page3.records.at(-1).LastName });
    const streamed = [];
    const all = await conn.query(soql, { headers }).on('record', (r) => streamed.push(r.LastName))
        .run({ autoFetch: true, maxFetch: 1000 });
    const capped = await conn.query(soql, { headers }).run({ autoFetch: true, maxFetch: 300 });
    emit('autoFetch', { totalSize: all.totalSize, streamed: streamed.length, distinct: new Set(streamed).size,
                        capped: capped.records.length });

    const withChildren = await conn.query(
        `SELECT Name, (SELECT LastName FROM Contacts ORDER BY LastName LIMIT 2) FROM Account WHERE Id = '${parent.id}'`);
    const withParent = await conn.query(`SELECT LastName, Account.Name FROM Contact WHERE Id = '${ids[0]}'`);
    const like = await conn.sobject('Contact').find({ LastName: { $like: 'L00%' } }, ['Id']);
    const deletedRows = await conn.query('SELECT Id FROM Contact WHERE IsDeleted = true', { scanAll: true });
    emit('relationships', {
        children: withChildren.records[0].Contacts.records.map((r) => r.LastName),
        childrenTotal: withChildren.records[0].Contacts.totalSize,
        parent: withParent.records[0].Account.Name, like: like.length, count: await conn.sobject('Contact').count(),
        deleted: deletedRows.totalSize,
    });

    const found = await conn.search(`FIND {Parent} IN NAME FIELDS RETURNING Account(Id, Name)`);
    const describe = await accounts.describe();
    const external = describe.fields.find((f) => f.name === 'External_Id__c');
    const global = await conn.describeGlobal();
    emit('describe', {
        search: found.searchRecords.map((r) => r.attributes.type), keyPrefix: describe.keyPrefix,
        externalId: external && external.externalId, global: global.sobjects.some((s) => s.name === 'Contact'),
        badQuery: await errorOf(conn.query('SELECT Nope__c FROM Account')),
    });
});
