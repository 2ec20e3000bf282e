/* A library a test plugin depends on, built where the loader will not find it. */
__attribute__((visibility("default"))) int nn_absent_dependency(void) { return 0; }
