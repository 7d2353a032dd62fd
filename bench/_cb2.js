const c=require("slabpool/compat"); const {MemoryPool}=require('slabpool');
const p=new MemoryPool({blockSize:1024,type:Uint8Array,numBlocks:64,grow:true,autoCoalesceThreshold:100});
function run(name,f,N=4e6){ for(let r=0;r<3;r++){ const s=process.hrtime.bigint(); for(let i=0;i<N;i++) f(i); if(r==2) console.log(name,(Number(process.hrtime.bigint()-s)/N).toFixed(1)); } }
run('pool', i=>{ const b=p.getBlock(); b[0]=i; p.returnBlock(b); });
run('mallocDouble', i=>{ const x=c.mallocDouble(100); x[0]=i; c.free(x); });
run('malloc', i=>{ const x=c.malloc(100,'double'); x[0]=i; c.free(x); });
run('freeDouble', i=>{ const x=c.mallocDouble(100); x[0]=i; c.freeDouble(x); });
