-- PostgreSQL only (change notifications for several nodes); SQLite serves one process.
SELECT 1;
