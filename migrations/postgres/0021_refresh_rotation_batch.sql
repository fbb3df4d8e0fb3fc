-- SQLite only (its refresh-rotation trigger, written in batches); nothing to do here.
SELECT 1;
