// jsforce's SOAP calls (conn.soap, partner API) on a session from the SOAP login(): create, update,
// upsert on an external ID, convertLead, merge, delete and emptyRecycleBin, getUserInfo.
import { emit, run, soapConnection } from './common.mjs';

await run(async () => {
    const conn = await soapConnection();
    const soap = conn.soap;

    const created = await soap.create([{ type: 'Account', Name: 'Soap One' }, { type: 'Account', Name: 'Soap Two' }]);
    const [one, two] = created.map((r) => r.id);
    const updated = await soap.update([{ type: 'Account', Id: one, Industry: 'Energy' }]);
    const upserted = [
        ...await soap.upsert('External_Id__c', [{ type: 'Account', External_Id__c: 'S-1', Name: 'Soap Upserted' }]),
        ...await soap.upsert('External_Id__c', [{ type: 'Account', External_Id__c: 'S-1', Name: 'Twice' },
                                                { type: 'Account', External_Id__c: 'S-2', Name: 'Other' }]),
    ];
    // a key given twice in one call fails both records, as Salesforce matches a call's records together
    const repeated = await soap.upsert('External_Id__c', [{ type: 'Account', External_Id__c: 'S-3', Name: 'A' },
                                                          { type: 'Account', External_Id__c: 'S-3', Name: 'B' }]);
    const read = await conn.sobject('Account').retrieve(one);
    emit('write', { created: created.map((r) => r.success), updated: updated.map((r) => r.success), industry: read.Industry,
                    upserted: upserted.map((r) => [r.success, r.created]),
                    repeated: repeated.map((r) => [r.success, r.errors.map((e) => e.statusCode)]) });

    const lead = await conn.sobject('Lead').create({ LastName: 'Turing', Company: 'Bletchley' });
    const converted = await soap.convertLead({ leadId: lead.id, convertedStatus: 'Closed - Converted',
                                               doNotCreateOpportunity: false, opportunityName: 'Enigma' });
    const contact = await conn.sobject('Contact').retrieve(converted.contactId);
    const leadAfter = await conn.sobject('Lead').retrieve(lead.id);
    emit('convertLead', {
        success: converted.success, prefixes: [converted.accountId, converted.contactId, converted.opportunityId].map((i) => i.slice(0, 3)),
        contact: contact.LastName, contactAccount: contact.AccountId === converted.accountId,
        isConverted: leadAfter.IsConverted, status: leadAfter.Status,
    });

    const merged = await soap._invoke('merge', { request: { masterRecord: { type: 'Account', Id: one }, recordToMergeIds: [two] } });
    const gone = await soap.delete([one]);
    const emptied = await soap.emptyRecycleBin([one]);
    const user = await soap.getUserInfo();
    emit('other', {
        merged: [merged.success, merged.mergedRecordIds === two], deleted: gone.map((r) => r.success),
        emptied: emptied.map((r) => r.success), user: [user.userName, user.userId === conn.userInfo.id],
        timestamp: typeof (await soap.getServerTimestamp()).timestamp,
    });
});
