/* placeholder */
typedef int placeholder_collection;
