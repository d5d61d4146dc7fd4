/* placeholder */
typedef int placeholder_spec;
