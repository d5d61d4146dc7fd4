/* placeholder */
typedef int placeholder_preload;
