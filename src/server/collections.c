/* placeholder */
typedef int placeholder_collections;
