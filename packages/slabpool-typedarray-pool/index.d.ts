export * from 'slabpool/compat';
