-- begin: rows 1, parameters 0 []
BEGIN IMMEDIATE
-- commit: rows 1, parameters 0 []
COMMIT
-- rollback: rows 1, parameters 0 []
ROLLBACK
-- savepoint: rows 1, parameters 0 []
SAVEPOINT eb_item
-- release: rows 1, parameters 0 []
RELEASE SAVEPOINT eb_item
-- rollback to: rows 1, parameters 0 []
ROLLBACK TO SAVEPOINT eb_item
-- mark: rows 1, parameters 0 []
(none)
-- outcome: rows 1, parameters 0 []
(none)
-- fence: rows 1, parameters 0 []
(none)
-- json upsert: rows 1, parameters 0 []
(none)
-- json call: rows 1, parameters 0 []
(none)
-- insert: rows 1, parameters 25 [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24]
INSERT INTO Event (Event_ID, Claim_Audit_Event, Completion_Date, Completion_Percent, Due_Date, End_Date, Entry_Date, Entry_User, Event_Processor, Event_Type, Meta_Data, Next_Scheduled_Date, Next_Scheduled_Time, Priority, Process_Automation_Event, Reminder, Reminder_Event_ID, ReportSeries_Key, Start_Date, Status, Subject, Update_Date, Update_User, UserGroup_Key, User_ID) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
-- write, no kept field given: rows 1, parameters 23 [1,2,3,4,5,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,0]
UPDATE Event SET Claim_Audit_Event = ?, Completion_Date = ?, Completion_Percent = ?, Due_Date = ?, End_Date = ?, Event_Processor = ?, Event_Type = ?, Meta_Data = ?, Next_Scheduled_Date = ?, Next_Scheduled_Time = ?, Priority = ?, Process_Automation_Event = ?, Reminder = ?, Reminder_Event_ID = ?, ReportSeries_Key = ?, Start_Date = ?, Status = ?, Subject = ?, Update_Date = ?, Update_User = ?, UserGroup_Key = ?, User_ID = ? WHERE Event_ID = ?
-- write, entry_User given: rows 1, parameters 24 [1,2,3,4,5,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,0]
UPDATE Event SET Claim_Audit_Event = ?, Completion_Date = ?, Completion_Percent = ?, Due_Date = ?, End_Date = ?, Entry_User = ?, Event_Processor = ?, Event_Type = ?, Meta_Data = ?, Next_Scheduled_Date = ?, Next_Scheduled_Time = ?, Priority = ?, Process_Automation_Event = ?, Reminder = ?, Reminder_Event_ID = ?, ReportSeries_Key = ?, Start_Date = ?, Status = ?, Subject = ?, Update_Date = ?, Update_User = ?, UserGroup_Key = ?, User_ID = ? WHERE Event_ID = ?
-- write, every kept field given: rows 1, parameters 25 [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,0]
UPDATE Event SET Claim_Audit_Event = ?, Completion_Date = ?, Completion_Percent = ?, Due_Date = ?, End_Date = ?, Entry_Date = ?, Entry_User = ?, Event_Processor = ?, Event_Type = ?, Meta_Data = ?, Next_Scheduled_Date = ?, Next_Scheduled_Time = ?, Priority = ?, Process_Automation_Event = ?, Reminder = ?, Reminder_Event_ID = ?, ReportSeries_Key = ?, Start_Date = ?, Status = ?, Subject = ?, Update_Date = ?, Update_User = ?, UserGroup_Key = ?, User_ID = ? WHERE Event_ID = ?
-- existing, 2 keys: rows 2, parameters 1 [0]
SELECT Event_ID FROM Event WHERE Event_ID IN (?, ?)
-- bulk, 2 rows, entry_Date given: rows 2, parameters 25 [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24]
WITH r (Event_ID, Claim_Audit_Event, Completion_Date, Completion_Percent, Due_Date, End_Date, Entry_Date, Entry_User, Event_Processor, Event_Type, Meta_Data, Next_Scheduled_Date, Next_Scheduled_Time, Priority, Process_Automation_Event, Reminder, Reminder_Event_ID, ReportSeries_Key, Start_Date, Status, Subject, Update_Date, Update_User, UserGroup_Key, User_ID) AS (VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)) INSERT INTO Event (Event_ID, Claim_Audit_Event, Completion_Date, Completion_Percent, Due_Date, End_Date, Entry_Date, Entry_User, Event_Processor, Event_Type, Meta_Data, Next_Scheduled_Date, Next_Scheduled_Time, Priority, Process_Automation_Event, Reminder, Reminder_Event_ID, ReportSeries_Key, Start_Date, Status, Subject, Update_Date, Update_User, UserGroup_Key, User_ID) SELECT * FROM r WHERE true ON CONFLICT (Event_ID) DO UPDATE SET Claim_Audit_Event = EXCLUDED.Claim_Audit_Event, Completion_Date = EXCLUDED.Completion_Date, Completion_Percent = EXCLUDED.Completion_Percent, Due_Date = EXCLUDED.Due_Date, End_Date = EXCLUDED.End_Date, Entry_Date = EXCLUDED.Entry_Date, Event_Processor = EXCLUDED.Event_Processor, Event_Type = EXCLUDED.Event_Type, Meta_Data = EXCLUDED.Meta_Data, Next_Scheduled_Date = EXCLUDED.Next_Scheduled_Date, Next_Scheduled_Time = EXCLUDED.Next_Scheduled_Time, Priority = EXCLUDED.Priority, Process_Automation_Event = EXCLUDED.Process_Automation_Event, Reminder = EXCLUDED.Reminder, Reminder_Event_ID = EXCLUDED.Reminder_Event_ID, ReportSeries_Key = EXCLUDED.ReportSeries_Key, Start_Date = EXCLUDED.Start_Date, Status = EXCLUDED.Status, Subject = EXCLUDED.Subject, Update_Date = EXCLUDED.Update_Date, Update_User = EXCLUDED.Update_User, UserGroup_Key = EXCLUDED.UserGroup_Key, User_ID = EXCLUDED.User_ID RETURNING Event_ID
