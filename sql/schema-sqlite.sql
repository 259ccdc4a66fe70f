-- events-batch: the Event table for SQLite 3 (SQLite3 ODBC driver).
-- Date-times are UTC text 'YYYY-MM-DD HH:MM:SS.SSS', which SQLite's date
-- functions read; booleans are 0/1.  WAL lets readers and several writer
-- processes share the file; the program also asks for it on every connect.
PRAGMA journal_mode = WAL;

CREATE TABLE IF NOT EXISTS Event (
    Event_ID                 INTEGER NOT NULL PRIMARY KEY,
    Claim_Audit_Event        INTEGER NOT NULL CHECK (Claim_Audit_Event IN (0, 1)),
    Completion_Date          TEXT,
    Completion_Percent       REAL,
    Due_Date                 TEXT,
    End_Date                 TEXT,
    Entry_Date               TEXT NOT NULL,
    Entry_User               VARCHAR(20),
    Event_Processor          VARCHAR(256),
    Event_Type               VARCHAR(32),
    Meta_Data                TEXT,
    Next_Scheduled_Date      TEXT,
    Next_Scheduled_Time      TEXT,
    Priority                 VARCHAR(32),
    Process_Automation_Event INTEGER NOT NULL CHECK (Process_Automation_Event IN (0, 1)),
    Reminder                 INTEGER NOT NULL CHECK (Reminder IN (0, 1)),
    Reminder_Event_ID        INTEGER,
    ReportSeries_Key         INTEGER,
    Start_Date               TEXT,
    Status                   VARCHAR(32),
    Subject                  VARCHAR(512),
    Update_Date              TEXT NOT NULL,
    Update_User              VARCHAR(20),
    UserGroup_Key            INTEGER,
    User_ID                  VARCHAR(20)
);
