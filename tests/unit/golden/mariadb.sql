-- begin: rows 1, parameters 0 []
START TRANSACTION
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
REPLACE INTO EventBatchCommit (Writer, Batch, Written) VALUES (?, ?, UTC_TIMESTAMP(3))
-- outcome: rows 1, parameters 0 []
SELECT Batch FROM EventBatchCommit WHERE Writer = ? FOR UPDATE
-- fence: rows 1, parameters 0 []
(none)
-- json upsert: rows 1, parameters 0 []
(none)
-- json call: rows 1, parameters 0 []
(none)
-- insert: rows 1, parameters 0 []
(none)
-- write, no kept field given: rows 1, parameters 25 [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24]
INSERT INTO Event (Event_ID, Claim_Audit_Event, Completion_Date, Completion_Percent, Due_Date, End_Date, Entry_Date, Entry_User, Event_Processor, Event_Type, Meta_Data, Next_Scheduled_Date, Next_Scheduled_Time, Priority, Process_Automation_Event, Reminder, Reminder_Event_ID, ReportSeries_Key, Start_Date, Status, Subject, Update_Date, Update_User, UserGroup_Key, User_ID) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE Claim_Audit_Event = VALUES(Claim_Audit_Event), Completion_Date = VALUES(Completion_Date), Completion_Percent = VALUES(Completion_Percent), Due_Date = VALUES(Due_Date), End_Date = VALUES(End_Date), Event_Processor = VALUES(Event_Processor), Event_Type = VALUES(Event_Type), Meta_Data = VALUES(Meta_Data), Next_Scheduled_Date = VALUES(Next_Scheduled_Date), Next_Scheduled_Time = VALUES(Next_Scheduled_Time), Priority = VALUES(Priority), Process_Automation_Event = VALUES(Process_Automation_Event), Reminder = VALUES(Reminder), Reminder_Event_ID = VALUES(Reminder_Event_ID), ReportSeries_Key = VALUES(ReportSeries_Key), Start_Date = VALUES(Start_Date), Status = VALUES(Status), Subject = VALUES(Subject), Update_Date = VALUES(Update_Date), Update_User = VALUES(Update_User), UserGroup_Key = VALUES(UserGroup_Key), User_ID = VALUES(User_ID)
-- write, entry_User given: rows 1, parameters 25 [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24]
INSERT INTO Event (Event_ID, Claim_Audit_Event, Completion_Date, Completion_Percent, Due_Date, End_Date, Entry_Date, Entry_User, Event_Processor, Event_Type, Meta_Data, Next_Scheduled_Date, Next_Scheduled_Time, Priority, Process_Automation_Event, Reminder, Reminder_Event_ID, ReportSeries_Key, Start_Date, Status, Subject, Update_Date, Update_User, UserGroup_Key, User_ID) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE Claim_Audit_Event = VALUES(Claim_Audit_Event), Completion_Date = VALUES(Completion_Date), Completion_Percent = VALUES(Completion_Percent), Due_Date = VALUES(Due_Date), End_Date = VALUES(End_Date), Entry_User = VALUES(Entry_User), Event_Processor = VALUES(Event_Processor), Event_Type = VALUES(Event_Type), Meta_Data = VALUES(Meta_Data), Next_Scheduled_Date = VALUES(Next_Scheduled_Date), Next_Scheduled_Time = VALUES(Next_Scheduled_Time), Priority = VALUES(Priority), Process_Automation_Event = VALUES(Process_Automation_Event), Reminder = VALUES(Reminder), Reminder_Event_ID = VALUES(Reminder_Event_ID), ReportSeries_Key = VALUES(ReportSeries_Key), Start_Date = VALUES(Start_Date), Status = VALUES(Status), Subject = VALUES(Subject), Update_Date = VALUES(Update_Date), Update_User = VALUES(Update_User), UserGroup_Key = VALUES(UserGroup_Key), User_ID = VALUES(User_ID)
-- write, every kept field given: rows 1, parameters 25 [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24]
INSERT INTO Event (Event_ID, Claim_Audit_Event, Completion_Date, Completion_Percent, Due_Date, End_Date, Entry_Date, Entry_User, Event_Processor, Event_Type, Meta_Data, Next_Scheduled_Date, Next_Scheduled_Time, Priority, Process_Automation_Event, Reminder, Reminder_Event_ID, ReportSeries_Key, Start_Date, Status, Subject, Update_Date, Update_User, UserGroup_Key, User_ID) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE Claim_Audit_Event = VALUES(Claim_Audit_Event), Completion_Date = VALUES(Completion_Date), Completion_Percent = VALUES(Completion_Percent), Due_Date = VALUES(Due_Date), End_Date = VALUES(End_Date), Entry_Date = VALUES(Entry_Date), Entry_User = VALUES(Entry_User), Event_Processor = VALUES(Event_Processor), Event_Type = VALUES(Event_Type), Meta_Data = VALUES(Meta_Data), Next_Scheduled_Date = VALUES(Next_Scheduled_Date), Next_Scheduled_Time = VALUES(Next_Scheduled_Time), Priority = VALUES(Priority), Process_Automation_Event = VALUES(Process_Automation_Event), Reminder = VALUES(Reminder), Reminder_Event_ID = VALUES(Reminder_Event_ID), ReportSeries_Key = VALUES(ReportSeries_Key), Start_Date = VALUES(Start_Date), Status = VALUES(Status), Subject = VALUES(Subject), Update_Date = VALUES(Update_Date), Update_User = VALUES(Update_User), UserGroup_Key = VALUES(UserGroup_Key), User_ID = VALUES(User_ID)
-- existing, 2 keys: rows 1, parameters 0 []
(none)
-- bulk, 2 rows, entry_Date given: rows 1, parameters 0 []
(none)
