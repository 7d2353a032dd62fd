const c=require("typedarray-pool");
function run(name,f,N=4e6){ let best=1e9; for(let r=0;r<5;r++){ const s=process.hrtime.bigint(); for(let i=0;i<N;i++) f(i); const t=Number(process.hrtime.bigint()-s)/N; if(r>1) best=Math.min(best,t);} console.log(name,best.toFixed(1)); }
run('tap mallocDouble', i=>{ const x=c.mallocDouble(100); x[0]=i; c.free(x); });
run('tap malloc double', i=>{ const x=c.malloc(100,'double'); x[0]=i; c.free(x); });
run('tap freeDouble', i=>{ const x=c.mallocDouble(100); x[0]=i; c.freeDouble(x); });
