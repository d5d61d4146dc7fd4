/* placeholder */
typedef int placeholder_log;
